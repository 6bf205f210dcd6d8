#!/usr/bin/env bash
# `make test-compose`: the compose stacks for real, as docs/operations/compose.md describes
# them, on a machine with a Docker engine (root; CI runs it from .ci/run). Stages, in order
# (arguments pick some of them; each prints its time, and a summary ends the run):
#
#   docker          ../shared/docker/setup.sh with STANDINS=1 (engine, compose, python and
#                   rabbitmq stand-ins; idempotent), where no engine answers yet
#   standins        scripts/build-standin-images.sh (mongo:7 and FerretDB's images)
#   demo            the README's first command, detached and waiting for health:
#                     docker compose --env-file demo.env up --build --detach --wait
#                   then the README walk-through's own commands against it
#                   (tests/e2e/clients/test_readme_shell.py), tests/compose (a callback from
#                   a container to a receiver on this machine), `make demo`'s output,
#                   `down -v`
#   placeholders    .env copied from .env.example as it is: `up` must fail, naming every
#                   password left `change-me`, before the broker or the database start
#   production      .env from .env.example with generated passwords, `docker compose up
#                   -d --build`: tests/compose (healthy, only the API published, least
#                   privilege), `down -v`
#   ferretdb        the same with docker-compose.ferretdb.yml
#   testcontainers  the integration tier with no AMQP_URL/MONGODB_URL: its RabbitMQ and
#                   database in throwaway containers (tests/conftest.py)
#
# It never binds the host ports of the machine's own test services (5672, 27017, 5433) nor
# 8080/8081: the API is published on a free port (HUMANTASK_API_PORT), under the compose
# project `humantask-check` (COMPOSE_PROJECT_NAME), so a stack of your own is left alone.
# A .env of yours is moved aside while the production stages run, and put back.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"

ALL_STAGES=(docker standins demo placeholders production ferretdb testcontainers)
STAGES=("$@")
[ "${#STAGES[@]}" -gt 0 ] || STAGES=("${ALL_STAGES[@]}")
for stage in "${STAGES[@]}"; do
  [[ " ${ALL_STAGES[*]} " == *" $stage "* ]] || { echo "unknown stage $stage (${ALL_STAGES[*]})" >&2; exit 2; }
done

DOCKER_SETUP="${DOCKER_SETUP:-$ROOT/../shared/docker/setup.sh}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-humantask-check}"
HUMANTASK_API_PORT="${HUMANTASK_API_PORT:-$("$PYTHON" -c 'from tests.support.services import free_port; print(free_port("0.0.0.0"))')}"
export HUMANTASK_API_PORT
export TESTCONTAINERS_RYUK_DISABLED=true TESTCONTAINERS_CONNECTION_MODE=docker_host
FERRETDB_FILES=(-f docker-compose.yml -f docker-compose.ferretdb.yml)
PYTEST=("$PYTHON" -m pytest -p no:cacheprovider -ra)

log() { printf '[compose-check %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
TIMES=()
current=""
stage_start=0

begin() { current="$1"; stage_start=$SECONDS; log "stage $current: start"; }
end() {
  local seconds=$((SECONDS - stage_start))
  TIMES+=("$(printf '%-15s %5d s' "$current" "$seconds")")
  log "stage $current: done in ${seconds} s"
  current=""
}

# Any stack this script may have left (a killed run): removed, with its volumes.
down_all() {
  docker compose --env-file demo.env "${FERRETDB_FILES[@]}" down -v --remove-orphans \
    >/dev/null 2>&1 || true
  docker compose --env-file demo.env down -v --remove-orphans >/dev/null 2>&1 || true
}

saved_env=""
restore_env() {
  if [ -n "$saved_env" ]; then
    mv -f "$saved_env" .env
    saved_env=""
  elif [ -f .env.compose-check ]; then
    rm -f .env .env.compose-check
  fi
}

on_exit() {
  local status=$?
  if [ "$status" -ne 0 ] && [ -n "$current" ]; then
    log "stage $current FAILED (exit $status); the stack as it was:"
    docker compose ps -a 2>/dev/null || true
    docker compose logs --tail 40 2>/dev/null || true
  fi
  if docker info >/dev/null 2>&1; then down_all; fi
  restore_env
  if [ "${#TIMES[@]}" -gt 0 ]; then
    log "stage times:"
    printf '  %s\n' "${TIMES[@]}" >&2
  fi
  exit "$status"
}
trap on_exit EXIT

# .env for the production stages: the operator's steps of .env.example, a marker beside it.
make_env() { # with_passwords: yes | no
  if [ -f .env ] && [ ! -f .env.compose-check ] && [ -z "$saved_env" ]; then
    saved_env="$(mktemp "$ROOT/.env.saved.XXXXXX")"
    mv .env "$saved_env"
    log "your .env is kept aside in $saved_env while this runs"
  fi
  cp .env.example .env && chmod 600 .env
  touch .env.compose-check
  if [ "$1" = yes ]; then
    while grep -q '=change-me$' .env; do
      sed -i "0,/=change-me$/s//=$(openssl rand -hex 24)/" .env
    done
  fi
}

compose_tests() { # stage env-file files...
  local stage="$1" env_file="$2"
  shift 2
  COMPOSE_CHECK_STAGE="$stage" COMPOSE_CHECK_ENV_FILE="$env_file" \
    COMPOSE_CHECK_FILES="$(IFS=:; echo "$*")" "${PYTEST[@]}" tests/compose
}

for stage in "${STAGES[@]}"; do
  case "$stage" in
  docker)
    begin docker
    STANDINS=1 bash "$DOCKER_SETUP"
    end
    ;;
  standins)
    begin standins
    bash scripts/build-standin-images.sh
    end
    ;;
  demo)
    begin demo
    down_all
    # The README's first command, as written, detached and waiting for health.
    docker compose --env-file demo.env up --build --detach --wait
    token="$(docker compose --env-file demo.env --progress quiet run --rm -T admin \
      workers create --name readme | "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["token"])')"
    HUMANTASK_README_URL="http://127.0.0.1:$HUMANTASK_API_PORT" \
      HUMANTASK_README_API_KEY="$(sed -n 's/^HUMANTASK_DEMO_API_KEY=//p' demo.env)" \
      HUMANTASK_README_WORKER_TOKEN="$token" \
      "${PYTEST[@]}" tests/e2e/clients/test_readme_shell.py
    compose_tests demo demo.env docker-compose.yml
    # `make demo` on the running stack: it prints what it promises.
    bash scripts/demo.sh >/tmp/compose-check-demo.txt
    for line in "API               http://localhost:$HUMANTASK_API_PORT" "demo API key" \
      "callback secret   whsec_" "workbench         http://localhost:$HUMANTASK_API_PORT/work" \
      "worker token      worker_" "docker compose --env-file demo.env down"; do
      grep -qF "$line" /tmp/compose-check-demo.txt \
        || { cat /tmp/compose-check-demo.txt >&2; log "make demo printed no '$line'"; exit 1; }
    done
    docker compose --env-file demo.env down -v
    end
    ;;
  placeholders)
    begin placeholders
    down_all
    make_env no
    if docker compose up -d --build >/tmp/compose-check-placeholders.log 2>&1; then
      cat /tmp/compose-check-placeholders.log >&2
      log "docker compose up started with the placeholders of .env.example"
      exit 1
    fi
    compose_tests placeholders .env docker-compose.yml
    down_all
    docker compose "${FERRETDB_FILES[@]}" up -d --build >/dev/null 2>&1 && exit 1
    compose_tests placeholders .env docker-compose.yml docker-compose.ferretdb.yml
    down_all
    end
    ;;
  production)
    begin production
    down_all
    make_env yes
    docker compose up -d --build --wait
    compose_tests production .env docker-compose.yml
    docker compose down -v
    end
    ;;
  ferretdb)
    begin ferretdb
    down_all
    make_env yes
    docker compose "${FERRETDB_FILES[@]}" up -d --build --wait
    compose_tests ferretdb .env docker-compose.yml docker-compose.ferretdb.yml
    docker compose "${FERRETDB_FILES[@]}" down -v
    end
    ;;
  testcontainers)
    begin testcontainers
    # tests/conftest.py starts the containers, and first removes those a killed session
    # left (no Ryuk here to reap them), and only those.
    env -u AMQP_URL -u MONGODB_URL "${PYTEST[@]}" tests/integration
    end
    ;;
  esac
done
