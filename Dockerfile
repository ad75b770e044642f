# syntax=docker/dockerfile:1
# The operator image.
#
#   docker build -t <registry>/kubenova-operator:<tag> .           # runtime (default)
#   docker build --target dev -t kubenova-operator:dev .           # Tilt's dev image
#
# build:   a virtualenv at /opt/venv with the dependencies (own layer, cached until
#          pyproject.toml changes) and the operator wheel.
# dev:     the same venv, the package installed editable from /app, restarted by
#          watchfiles when a synced source file changes (see Tiltfile).
# runtime: python:3.11-slim plus /opt/venv only: no compilers, no build tools, no
#          source tree, numeric non-root user.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
# Dependencies first, read from pyproject.toml, so a source change reuses this layer.
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt
COPY kubenova_operator ./kubenova_operator
RUN pip wheel --no-deps --wheel-dir /tmp/wheels . \
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

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="kubenova-operator" \
      org.opencontainers.image.description="Kubenova: multi-tenant application platform operator for Kubernetes" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# The venv's bytecode was compiled at install time; nothing is written at run time, so
# the root filesystem can be mounted read-only (the Deployment gives /tmp an emptyDir).
COPY --from=build /opt/venv /opt/venv
USER 65532:65532
# 8080 Prometheus /metrics, 8081 /healthz and /readyz, 8443 the aggregated API (TLS).
EXPOSE 8080 8081 8443
ENTRYPOINT ["kubenova-operator"]
