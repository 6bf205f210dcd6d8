# One image for every humantask service. The default command runs the gateway;
# docker-compose.yml picks the service per container with `command:`
# (humantask-gateway, humantask-taskstore, humantask-notifier, humantask-admin).
# Healthchecks are defined in docker-compose.yml, not here.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: install the project and its pinned dependencies into a virtualenv ---
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:${PATH}"

WORKDIR /src
# Runtime dependencies only (no test or bench extra): the lock, every file checked
# against its hash. A layer of its own, rebuilt only when the lock changes.
COPY requirements/runtime.txt requirements/runtime.txt
RUN pip install --no-cache-dir --require-hashes -r requirements/runtime.txt

# Then the project on top, resolving nothing again. Only what the wheel build needs
# (see [tool.hatch.build.targets.wheel] in pyproject.toml).
COPY pyproject.toml ./
COPY shared/ shared/
COPY services/ services/
RUN pip install --no-cache-dir --no-deps . && pip check

# --- runtime: the virtualenv on a clean slim image, run as a non-root user ---
FROM ${PYTHON_IMAGE} AS runtime

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH="/opt/venv/bin:${PATH}"

RUN groupadd --system --gid 10001 humantask \
    && useradd --system --uid 10001 --gid humantask --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin humantask

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
USER 10001:10001

# 8080: gateway HTTP (GATEWAY_PORT). 8081: health/metrics of task-store and notifier (HEALTH_PORT).
EXPOSE 8080 8081

CMD ["humantask-gateway"]
