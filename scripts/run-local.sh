#!/usr/bin/env bash
# Runs humantask on this machine without Docker: the gateway, the task-store and the
# notifier as background processes, against a RabbitMQ and a MongoDB-compatible server
# that already run here (scripts/start-test-services.sh starts both on Debian).
#
#   make install && scripts/run-local.sh        # Ctrl-C stops all three
#
# Environment (defaults in brackets):
#   AMQP_URL                [amqp://guest:guest@localhost:5672/]
#   MONGODB_URL             [mongodb://localhost:27017/humantask]
#   GATEWAY_PORT            [8080]   the public HTTP API and /work
#   TASKSTORE_HEALTH_PORT   [8081]   task-store's /healthz, /readyz
#   NOTIFIER_HEALTH_PORT    [8082]   notifier's /healthz, /readyz
#   GATEWAY_HEALTH_PORT     [8083]   gateway's /healthz, /readyz, /metrics
#   HUMANTASK_DEMO_API_KEY  [live_demo_key_change_me]
#   CALLBACK_ALLOW_PRIVATE_NETWORKS [true]   so callbacks may reach local receivers
#   READY_TIMEOUT           [60]     seconds to wait for each /readyz
# Logs: .local/logs/<service>.log
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${VENV_BIN:-$ROOT/.venv/bin}"
LOG_DIR="$ROOT/.local/logs"

export AMQP_URL="${AMQP_URL:-amqp://guest:guest@localhost:5672/}"
export MONGODB_URL="${MONGODB_URL:-mongodb://localhost:27017/humantask}"
export HUMANTASK_DEMO_API_KEY="${HUMANTASK_DEMO_API_KEY:-live_demo_key_change_me}"
export CALLBACK_ALLOW_PRIVATE_NETWORKS="${CALLBACK_ALLOW_PRIVATE_NETWORKS:-true}"
export PYTHONUNBUFFERED=1
GATEWAY_PORT="${GATEWAY_PORT:-8080}"
TASKSTORE_HEALTH_PORT="${TASKSTORE_HEALTH_PORT:-8081}"
NOTIFIER_HEALTH_PORT="${NOTIFIER_HEALTH_PORT:-8082}"
GATEWAY_HEALTH_PORT="${GATEWAY_HEALTH_PORT:-8083}"
READY_TIMEOUT="${READY_TIMEOUT:-60}"

for script in humantask-gateway humantask-taskstore humantask-notifier; do
  if [ ! -x "$BIN/$script" ]; then
    echo "missing $BIN/$script: run 'make install' first" >&2
    exit 1
  fi
done

mkdir -p "$LOG_DIR"
declare -A PIDS=()

stop_all() {
  trap - INT TERM EXIT
  local name pid
  for name in "${!PIDS[@]}"; do
    pid="${PIDS[$name]}"
    if kill -0 "$pid" 2>/dev/null; then
      echo "stopping $name (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  # Give them the graceful shutdown they implement, then insist.
  local deadline=$((SECONDS + 30))
  for name in "${!PIDS[@]}"; do
    pid="${PIDS[$name]}"
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
      sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "$name did not stop in time; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
}
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM
trap 'stop_all' EXIT

start() { # name script [VAR=value ...]
  local name="$1" script="$2"
  shift 2
  env "$@" "$BIN/$script" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
  PIDS[$name]=$!
  echo "started $name (pid ${PIDS[$name]}), log: .local/logs/$name.log"
}

http_ok() { # url
  if command -v curl >/dev/null 2>&1; then
    curl -fsS -o /dev/null --noproxy '*' --max-time 2 "$1" 2>/dev/null
  else
    "$BIN/python" - "$1" <<'PY' 2>/dev/null
import sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
with opener.open(sys.argv[1], timeout=2) as r:
    sys.exit(0 if r.status == 200 else 1)
PY
  fi
}

wait_ready() { # name url
  local name="$1" url="$2" deadline=$((SECONDS + READY_TIMEOUT))
  until http_ok "$url"; do
    if ! kill -0 "${PIDS[$name]}" 2>/dev/null; then
      echo "$name exited; last lines of .local/logs/$name.log:" >&2
      tail -n 40 "$LOG_DIR/$name.log" >&2 || true
      exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "$name not ready at $url after ${READY_TIMEOUT}s (is RabbitMQ/MongoDB running?); last lines of its log:" >&2
      tail -n 40 "$LOG_DIR/$name.log" >&2 || true
      exit 1
    fi
    sleep 0.2
  done
  echo "$name ready ($url)"
}

start taskstore humantask-taskstore "HEALTH_PORT=$TASKSTORE_HEALTH_PORT"
start notifier humantask-notifier "HEALTH_PORT=$NOTIFIER_HEALTH_PORT"
start gateway humantask-gateway "GATEWAY_PORT=$GATEWAY_PORT" "HEALTH_PORT=$GATEWAY_HEALTH_PORT"

wait_ready taskstore "http://127.0.0.1:$TASKSTORE_HEALTH_PORT/readyz"
wait_ready notifier "http://127.0.0.1:$NOTIFIER_HEALTH_PORT/readyz"
wait_ready gateway "http://127.0.0.1:$GATEWAY_PORT/readyz"

cat <<EOF

humantask is running.
  API:        http://localhost:$GATEWAY_PORT/v1/
  Workbench:  http://localhost:$GATEWAY_PORT/work
  Demo key:   $HUMANTASK_DEMO_API_KEY     (curl -u $HUMANTASK_DEMO_API_KEY: http://localhost:$GATEWAY_PORT/v1/tasks)
  Logs:       .local/logs/
Press Ctrl-C to stop.
EOF

# Stay until Ctrl-C / SIGTERM, or until one service exits (then stop the others).
set +e
wait -n "${PIDS[@]}"
status=$?
set -e
for name in "${!PIDS[@]}"; do
  if ! kill -0 "${PIDS[$name]}" 2>/dev/null; then
    echo "$name exited (status $status); stopping the others. Last lines of its log:" >&2
    tail -n 20 "$LOG_DIR/$name.log" >&2 || true
  fi
done
exit "$status"
