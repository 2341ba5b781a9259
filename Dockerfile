# syntax=docker/dockerfile:1
# One image for every command: `serve` (native service, :8080), `gateway` (the default, :8090),
# `compare`, `replay`, `learn-noise`, `probe`. Config defaults are the files shipped in the package;
# mount a directory with gateway.yaml, comparator.yaml and known_differences.yaml and set
# AGNO_GATEWAY_CONFIG to use your own.
#
#   docker build -t agentos-session .
#   docker run -p 8090:8090 -e AGNO_PG_DSN=postgresql://... -e AGNO_LEGACY_URL=http://agentos:7777 agentos-session
#   docker run -p 8080:8080 -e AGNO_PG_DSN=postgresql://... agentos-session serve
#
# tests/packaging runs both stages' scripts without Docker and lints this file with hadolint.

# ---- build: the project's wheel and every dependency's wheel ----------------------------------
FROM python:3.11-slim AS build
ENV PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY . .
RUN sh scripts/build-wheels.sh /wheels

# ---- final: only the wheels, installed into a virtualenv; no compilers, no source -------------
FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AGNO_EMBEDDED_PG_DIR=/var/lib/agentos-session/pg
# The wheels and the install script are mounted from the build stage, not copied: no layer keeps them.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    --mount=type=bind,from=build,source=/src/scripts/install-wheels.sh,target=/usr/local/bin/install-wheels.sh \
    sh /usr/local/bin/install-wheels.sh /wheels /opt/venv
# Postgres (the embedded one, used when no DSN is set) refuses to run as root; so does this image.
# A fixed, numeric UID/GID (10001): Kubernetes' runAsNonRoot can only verify a numeric USER.
RUN groupadd --gid 10001 agentos \
    && useradd --no-log-init --uid 10001 --gid 10001 --create-home --home-dir /home/agentos --shell /usr/sbin/nologin agentos \
    && mkdir -p /var/lib/agentos-session \
    && chown 10001:10001 /var/lib/agentos-session
USER 10001:10001
WORKDIR /home/agentos
VOLUME /var/lib/agentos-session
EXPOSE 8080 8090
HEALTHCHECK --interval=10s --timeout=10s --start-period=30s --retries=3 CMD ["agentos-session", "probe"]
ENTRYPOINT ["agentos-session"]
CMD ["gateway"]
