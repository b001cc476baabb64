# syntax=docker/dockerfile:1
#
# One image for every otelzmq role. The role is the command:
#
#   docker run --rm otelzmq:latest proxy --bind 0.0.0.0 --expect-clients 3
#   docker run --rm otelzmq:latest client --proxy-host proxy
#
# The builder stage turns the project and its dependencies into wheels; the
# runtime stage installs those wheels only, so no compiler, header or build
# cache reaches the final image.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder

# Compilers are only needed when a dependency has no wheel for the target
# platform (for example grpcio on an unusual architecture). The version is
# whatever the base image's Debian release ships; this stage is thrown away.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install --yes --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m pip wheel --no-cache-dir --wheel-dir /wheels .


FROM ${PYTHON_IMAGE} AS runtime

ARG OTELZMQ_UID=10001
ARG OTELZMQ_GID=10001

LABEL org.opencontainers.image.title="otelzmq" \
      org.opencontainers.image.description="Traced ZeroMQ hosts recording CTF" \
      org.opencontainers.image.licenses="MIT"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    OTELZMQ_OUT=/out

RUN groupadd --system --gid "${OTELZMQ_GID}" otelzmq \
    && useradd --system --uid "${OTELZMQ_UID}" --gid otelzmq \
        --home-dir /home/otelzmq --create-home --shell /usr/sbin/nologin otelzmq \
    && mkdir -p /out \
    && chown otelzmq:otelzmq /out

# Install from the builder's wheels without copying them into a layer. The
# versions are the ones the builder resolved; --no-index allows no others.
# hadolint ignore=DL3013
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m pip install --no-cache-dir --no-index --find-links=/wheels otelzmq

COPY --chmod=0755 deploy/with-output-log.sh /usr/local/bin/with-output-log
COPY --chmod=0755 deploy/healthcheck.py /usr/local/bin/otelzmq-healthcheck

USER ${OTELZMQ_UID}:${OTELZMQ_GID}
WORKDIR /home/otelzmq

ENTRYPOINT ["otelzmq"]
CMD ["up", "--out", "/out"]
