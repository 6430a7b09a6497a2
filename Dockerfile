# syntax=docker/dockerfile:1
# mipomersen-cds as an OCI image: `docker build -t mipomersen-cds:0.1.0 .`
#
# Two stages: `build` installs the service and its locked dependencies (constraints.txt, written
# by `make lock`) into a virtual environment; the runtime stage copies only that environment
# onto the same slim Python base and runs it as a non-root user. The first start of a
# deployment migrates the database before any instance serves: `mipomersen-cds db upgrade`
# (the compose `migrate` service, the Kubernetes Job), then the default command.
#
# tests/test_packaging.py runs this file's RUN steps and its CMD as a plain shell script in a
# fresh virtual environment (no image can be built or pulled where the tests run): write every
# RUN in terms of WORKDIR and the ENV variables below, never of the image's absolute paths.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV VIRTUAL_ENV=/opt/mipomersen-cds \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv "$VIRTUAL_ENV"
COPY constraints.txt pyproject.toml README.md ./
COPY cds_service ./cds_service
COPY fhir_mappings ./fhir_mappings
RUN "$VIRTUAL_ENV/bin/pip" install --constraint constraints.txt . \
    && "$VIRTUAL_ENV/bin/pip" check

FROM ${PYTHON_IMAGE} AS runtime
ENV VIRTUAL_ENV=/opt/mipomersen-cds \
    PATH=/opt/mipomersen-cds/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MIPOMERSEN_CDS_DATA_DIR=/var/lib/mipomersen-cds
RUN groupadd --system --gid 10001 mipomersen \
    && useradd --system --uid 10001 --gid mipomersen --no-create-home \
       --home-dir "$MIPOMERSEN_CDS_DATA_DIR" --shell /usr/sbin/nologin mipomersen \
    && install -d -o mipomersen -g mipomersen -m 0750 "$MIPOMERSEN_CDS_DATA_DIR"
COPY --from=build /opt/mipomersen-cds /opt/mipomersen-cds
WORKDIR /var/lib/mipomersen-cds
USER 10001:10001
EXPOSE 8080
# Liveness only: readiness (/readyz, the database) is the orchestrator's business.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
# gunicorn with the project's own configuration (cds_service/cli/gunicorn_conf.py), through the
# service's own start-up checks; SIGTERM drains for MIPOMERSEN_CDS_DRAIN_SECONDS, then stops.
STOPSIGNAL SIGTERM
CMD ["mipomersen-cds", "serve", "--host", "0.0.0.0", "--port", "8080"]
