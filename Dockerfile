# One image for every humantask service. The default command runs the gateway;
# docker-compose.yml picks the service per container with `command:`
# (humantask-gateway, humantask-taskstore, humantask-notifier, humantask-admin, and the
# one-shot jobs `python -m humantask_shared.core.broker_definitions` / `.database_users`).
# Everything installed comes from the hash-pinned locks in requirements/ (make lock).

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: the locked dependencies and the project's wheel into /opt/venv ---
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
# The build's own tools first, from their lock: a pip of known version (whatever pip the
# base image has only installs this one, every file checked against its hash) and the
# build backend, in a virtualenv that stays in this stage.
COPY requirements/build.txt requirements/build.txt
RUN python -m venv /opt/build \
    && /opt/build/bin/python -m pip install --require-hashes --no-deps -r requirements/build.txt

# The runtime dependencies only (no test or bench extra), every file checked against its
# hash, into a virtualenv without pip. A layer of its own, rebuilt only when the lock changes.
COPY requirements/runtime.txt requirements/runtime.txt
RUN python -m venv --without-pip /opt/venv \
    && /opt/build/bin/pip --python /opt/venv/bin/python install --require-hashes --no-deps \
       -r requirements/runtime.txt

# Then the project on top, resolving nothing again: its wheel, built by the locked
# backend. Only what the wheel build needs (see [tool.hatch.build.targets.wheel]).
COPY pyproject.toml ./
COPY shared/ shared/
COPY services/ services/
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /tmp/wheels . \
    && /opt/build/bin/pip --python /opt/venv/bin/python install --no-deps /tmp/wheels/*.whl \
    && /opt/build/bin/pip --python /opt/venv/bin/python check

# --- runtime: the virtualenv on a clean slim image, run as a non-root user ---
FROM ${PYTHON_IMAGE} AS runtime

# The version is pyproject.toml's (tests/unit/test_version.py holds them equal).
ARG HUMANTASK_VERSION=0.2.0
LABEL org.opencontainers.image.title="humantask" \
      org.opencontainers.image.description="Self-hosted human tasks behind a Scale v1 compatible API: gateway, task-store, notifier and admin in one image" \
      org.opencontainers.image.version="${HUMANTASK_VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH="/opt/venv/bin:${PATH}"

RUN groupadd --system --gid 10001 humantask \
    && useradd --system --uid 10001 --gid humantask --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin humantask

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
USER 10001:10001

# 8080: gateway HTTP (GATEWAY_PORT). 8081: every service's /healthz, /readyz and /metrics
# (HEALTH_PORT), which the healthcheck asks.
EXPOSE 8080 8081
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=6 \
    CMD ["python", "-m", "humantask_shared.runtime.healthcheck"]

CMD ["humantask-gateway"]
