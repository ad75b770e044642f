# syntax=docker/dockerfile:1
# The operator image.
#
#   docker build -t <registry>/kubenova-operator:<tag> .           # runtime (default)
#   docker build --target dev -t kubenova-operator:dev .           # Tilt's dev image
#
# build:   a virtualenv at /opt/venv with the dependencies and the build backend (own
#          layer, cached until pyproject.toml changes) and the operator wheel.
# dev:     the same venv, the package installed editable from /app, restarted by
#          watchfiles when a synced source file changes (see Tiltfile).
# venv:    the build's venv without pip and setuptools (nothing is installed at run
#          time), checked to import.
# runtime: python:3.11-slim plus that venv only: no compilers, no build tools, no
#          package installer, no source tree, numeric non-root user, nothing written to
#          the root filesystem (it runs read-only; /tmp is the Deployment's emptyDir).
#
# PYTHON_IMAGE is any image with `python` 3.11 and its venv module; the e2e test builds
# on a Debian bookworm stand-in (e2e/kubenova_e2e/image.py, docs/install.md).

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
# Dependencies and the build backend first, read from pyproject.toml, so a source
# change reuses this layer and rebuilds the wheel without reaching PyPI.
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb')); print('\n'.join(p['project']['dependencies'] + p['build-system']['requires']))" \
      > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt
COPY kubenova_operator ./kubenova_operator
RUN pip wheel --no-deps --no-build-isolation --wheel-dir /tmp/wheels . \
 && pip install --no-deps /tmp/wheels/*.whl \
 && pip check

# For Tilt (live_update): editable install from /app, owned by the runtime user so
# synced files can be written; watchfiles restarts the operator (SIGINT, then SIGKILL
# after 30 s) when a .py file under /app/kubenova_operator changes.
FROM build AS dev
ENV PYTHONUNBUFFERED=1
RUN pip install "watchfiles>=1.0,<2"
WORKDIR /app
COPY pyproject.toml README.md ./
COPY kubenova_operator ./kubenova_operator
RUN pip install --no-deps -e . \
 && chown -R 65532:65532 /app
USER 65532:65532
EXPOSE 8080 8081 8443
ENTRYPOINT ["watchfiles", "--filter", "python", "--target-type", "command", \
            "--sigint-timeout", "30", "kubenova-operator", "/app/kubenova_operator"]

FROM build AS venv
RUN python -m pip uninstall --yes pip setuptools \
 && python -c "import kubenova_operator.__main__"

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="kubenova-operator" \
      org.opencontainers.image.description="Kubenova: multi-tenant application platform operator for Kubernetes" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# The venv's bytecode was compiled at install time; nothing is written at run time, so
# the root filesystem can be mounted read-only (the Deployment gives /tmp an emptyDir).
COPY --from=venv /opt/venv /opt/venv
USER 65532:65532
# 8080 Prometheus /metrics, 8081 /healthz and /readyz, 8443 the aggregated API (TLS).
EXPOSE 8080 8081 8443
ENTRYPOINT ["kubenova-operator"]
