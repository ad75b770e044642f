# syntax=docker/dockerfile:1
# The operator image: a virtualenv built in one stage, copied into a slim runtime with
# no compilers, running as a numeric non-root user.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY kubenova_operator ./kubenova_operator
RUN pip install --upgrade pip && pip install .

# For Tilt: the same venv with the package installed editable from /app, so synced
# source files take effect on a restart without a rebuild.
FROM build AS dev
WORKDIR /app
COPY pyproject.toml README.md ./
COPY kubenova_operator ./kubenova_operator
RUN pip install -e . && chown -R 65532:65532 /app
USER 65532:65532
ENTRYPOINT ["kubenova-operator"]

FROM python:3.11-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /opt/venv /opt/venv
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["kubenova-operator"]
