#!/usr/bin/env bash
# Installs (if missing) and starts the services the tests need, without Docker:
#   RabbitMQ  (Debian's rabbitmq-server) on 127.0.0.1:5672, vhost humantask_test
#   FerretDB  (MongoDB wire protocol on SQLite) on 127.0.0.1:27017
# Idempotent: whatever already runs is left alone. Meant for root on Debian 12 (CI, a
# developer's machine). Progress goes to stderr; stdout gets only the lines to export:
#   eval "$(scripts/start-test-services.sh)"
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export PATH="$PATH:/usr/sbin:/sbin:/usr/local/go/bin"

TEST_VHOST="${TEST_VHOST:-humantask_test}"
RABBITMQ_START_TIMEOUT="${RABBITMQ_START_TIMEOUT:-180}"
FERRETDB_START_TIMEOUT="${FERRETDB_START_TIMEOUT:-60}"
FERRETDB_PREFIX="${FERRETDB_PREFIX:-/opt/ferretdb}"
export FERRETDB_PREFIX # read by install-ferretdb.sh
FERRETDB_BIN="$FERRETDB_PREFIX/bin/ferretdb"
FERRETDB_DATA_DIR="${FERRETDB_DATA_DIR:-/var/tmp/humantask-ferretdb}"
FERRETDB_LOG="${FERRETDB_LOG:-/var/tmp/humantask-ferretdb.log}"
FERRETDB_PID_FILE="${FERRETDB_PID_FILE:-/var/tmp/humantask-ferretdb.pid}"
RABBITMQ_START_LOG="${RABBITMQ_START_LOG:-/var/tmp/humantask-rabbitmq-start.log}"

# Everything but the final export lines goes to stderr.
exec 3>&1 1>&2

log() { echo "[start-test-services] $*"; }
die() { echo "[start-test-services] ERROR: $*"; exit 1; }

# Root runs rabbitmqctl directly (Debian's wrapper switches to the rabbitmq user).
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

port_open() { # host port
  timeout 2 bash -c "exec 9<>/dev/tcp/$1/$2" 2>/dev/null
}

# ---------------------------------------------------------------- RabbitMQ

rabbit_ready() {
  port_open 127.0.0.1 5672 && $SUDO rabbitmqctl -q await_startup --timeout 10 >/dev/null 2>&1
}

bash "$HERE/install-rabbitmq.sh"

if rabbit_ready; then
  log "RabbitMQ already running"
else
  log "starting RabbitMQ (rabbitmq-server -detached; output in $RABBITMQ_START_LOG)"
  # It may already be booting (then this fails harmlessly); the wait below decides.
  if ! $SUDO rabbitmq-server -detached >>"$RABBITMQ_START_LOG" 2>&1 </dev/null; then
    log "rabbitmq-server -detached returned non-zero; waiting for a node anyway"
  fi
  deadline=$((SECONDS + RABBITMQ_START_TIMEOUT))
  until rabbit_ready; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 40 "$RABBITMQ_START_LOG" 2>/dev/null || true
      tail -n 40 /var/log/rabbitmq/rabbit@*.log 2>/dev/null || true
      die "RabbitMQ did not start within ${RABBITMQ_START_TIMEOUT}s"
    fi
    sleep 1
  done
  log "RabbitMQ is up"
fi

vhosts="$($SUDO rabbitmqctl -q --no-table-headers list_vhosts name)"
if grep -qxF "$TEST_VHOST" <<<"$vhosts"; then
  log "vhost $TEST_VHOST exists"
else
  log "creating vhost $TEST_VHOST"
  $SUDO rabbitmqctl -q add_vhost "$TEST_VHOST"
fi
$SUDO rabbitmqctl -q set_permissions -p "$TEST_VHOST" guest ".*" ".*" ".*"

# ---------------------------------------------------------------- FerretDB

if port_open 127.0.0.1 27017; then
  log "something already answers on 127.0.0.1:27017 (FerretDB or MongoDB); leaving it"
else
  bash "$HERE/install-ferretdb.sh"
  mkdir -p "$FERRETDB_DATA_DIR"
  log "starting FerretDB (data in $FERRETDB_DATA_DIR, log in $FERRETDB_LOG)"
  # nohup: it outlives this script; its output goes to the log file so it holds none of
  # the caller's pipes open.
  nohup "$FERRETDB_BIN" \
    --handler=sqlite \
    --sqlite-url="file:$FERRETDB_DATA_DIR/" \
    --state-dir="$FERRETDB_DATA_DIR" \
    --listen-addr=127.0.0.1:27017 \
    --telemetry=disable \
    --debug-addr=- \
    >>"$FERRETDB_LOG" 2>&1 </dev/null &
  ferret_pid=$!
  echo "$ferret_pid" >"$FERRETDB_PID_FILE"
  deadline=$((SECONDS + FERRETDB_START_TIMEOUT))
  until port_open 127.0.0.1 27017; do
    if ! kill -0 "$ferret_pid" 2>/dev/null; then
      tail -n 40 "$FERRETDB_LOG" || true
      die "FerretDB exited before listening"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 40 "$FERRETDB_LOG" || true
      die "FerretDB did not listen on 127.0.0.1:27017 within ${FERRETDB_START_TIMEOUT}s"
    fi
    sleep 0.2
  done
  log "FerretDB is up (pid $ferret_pid)"
fi

log "services ready; for the tests:"
echo "export AMQP_URL=amqp://guest:guest@127.0.0.1:5672/$TEST_VHOST" >&3
echo "export MONGODB_URL=mongodb://127.0.0.1:27017/humantask_test" >&3
