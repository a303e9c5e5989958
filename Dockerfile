# syntax=docker/dockerfile:1
# The dr image: `dr schedule --once` by default (EventBridge/ECS, Kubernetes CronJob, cron).
#
#   docker build -t dr:local .
#   docker run --rm -v "$PWD/dr.yaml:/etc/dr/dr.yaml:ro" dr:local --config /etc/dr/dr.yaml validate
#
# Two stages: the build stage installs dr and its dependencies into a virtualenv; the final
# stage copies only that virtualenv, so no compiler, pip cache or source tree ships.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# pyproject.toml names README.md as the package readme: both are needed to build.
COPY pyproject.toml README.md ./
COPY dr ./dr
RUN python -m venv /opt/dr \
 && /opt/dr/bin/pip install --no-compile . \
 && /opt/dr/bin/dr --version

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="dr" \
      org.opencontainers.image.description="Disaster recovery and cross-region backups for AWS" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/dr/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/home/dr \
    DR_SPOOL_DIR=/home/dr/spool
# A fixed, unprivileged uid/gid (10001): the ECS task and the Kubernetes CronJob run as it.
RUN groupadd --system --gid 10001 dr \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/dr --create-home \
      --shell /usr/sbin/nologin dr \
 && mkdir -p /home/dr/spool /etc/dr \
 && chown -R 10001:10001 /home/dr
COPY --from=build /opt/dr /opt/dr
USER 10001:10001
WORKDIR /home/dr
# No HEALTHCHECK: `schedule --once` exits when done; the daemon (`dr schedule`) serves /healthz
# on :9650 for orchestrators that probe it.
EXPOSE 9650
ENTRYPOINT ["dr"]
CMD ["schedule", "--once"]
