#!/usr/bin/env bash
# Installs (if missing) and starts the services the tests need, without Docker:
#   RabbitMQ  (Debian's rabbitmq-server) on 127.0.0.1:5672, vhost humantask_test
#   PostgreSQL 15 with the DocumentDB extension (an instance of its own) on 127.0.0.1:5433
#   FerretDB v2 (MongoDB wire protocol on that PostgreSQL) on 127.0.0.1:27017
# Idempotent: whatever already runs is left alone, what is stopped is started, what is
# built (scripts/install-documentdb.sh) is not built again. Meant for root on Debian 12
# (CI, a developer's machine). Progress goes to stderr; stdout gets only the lines to export:
#   eval "$(scripts/start-test-services.sh)"
# Stopping the database engine (default paths; the next run starts it again):
#   kill "$(cat /var/tmp/humantask-ferretdb.pid)"
#   runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D /var/tmp/humantask-pg stop -m fast
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export PATH="$PATH:/usr/sbin:/sbin:/usr/local/go/bin"

TEST_VHOST="${TEST_VHOST:-humantask_test}"
RABBITMQ_START_TIMEOUT="${RABBITMQ_START_TIMEOUT:-180}"
FERRETDB_START_TIMEOUT="${FERRETDB_START_TIMEOUT:-60}"
FERRETDB_PREFIX="${FERRETDB_PREFIX:-/opt/ferretdb2}"
export FERRETDB_PREFIX # read by install-documentdb.sh
FERRETDB_BIN="$FERRETDB_PREFIX/bin/ferretdb"
FERRETDB_STATE_DIR="${FERRETDB_STATE_DIR:-/var/tmp/humantask-ferretdb2}"
FERRETDB_LOG="${FERRETDB_LOG:-/var/tmp/humantask-ferretdb.log}"
FERRETDB_PID_FILE="${FERRETDB_PID_FILE:-/var/tmp/humantask-ferretdb.pid}"
FERRETDB_PG_POOL_MAX_CONNS="${FERRETDB_PG_POOL_MAX_CONNS:-50}"
PG_BIN="/usr/lib/postgresql/15/bin"
DOCUMENTDB_PG_PORT="${DOCUMENTDB_PG_PORT:-5433}"
DOCUMENTDB_PG_DATA="${DOCUMENTDB_PG_DATA:-/var/tmp/humantask-pg}"
DOCUMENTDB_PG_LOG="${DOCUMENTDB_PG_LOG:-/var/tmp/humantask-pg.log}"
DOCUMENTDB_PG_START_TIMEOUT="${DOCUMENTDB_PG_START_TIMEOUT:-120}"
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
  # 3>&-: nothing started here may hold the caller's stdout (the $(...) of an eval) open.
  if ! $SUDO rabbitmq-server -detached >>"$RABBITMQ_START_LOG" 2>&1 </dev/null 3>&-; then
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

# ------------------------------------------------- PostgreSQL 15 + DocumentDB

# Root builds; PostgreSQL itself runs as the postgres user (initdb and pg_ctl refuse root).
$SUDO bash "$HERE/install-documentdb.sh"

# 3>&-: nothing started here may hold the caller's stdout (the $(...) of an eval) open.
pg_as() { (cd / && $SUDO runuser -u postgres -- "$@" 3>&-); }
psql_pg() {
  PGCONNECT_TIMEOUT=10 "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
    -h 127.0.0.1 -p "$DOCUMENTDB_PG_PORT" -U postgres -d postgres "$@"
}

# The socket folder Debian's postgresql-common makes at boot; gone on a fresh /run.
$SUDO install -d -o postgres -g postgres -m 2775 /var/run/postgresql

if [ ! -f "$DOCUMENTDB_PG_DATA/PG_VERSION" ]; then
  if [ -e "$DOCUMENTDB_PG_DATA" ] && [ -n "$(ls -A "$DOCUMENTDB_PG_DATA" 2>/dev/null)" ]; then
    aside="$DOCUMENTDB_PG_DATA.broken.$(date +%Y%m%d%H%M%S)"
    log "$DOCUMENTDB_PG_DATA holds no database cluster (an interrupted initdb?); moving it to $aside"
    $SUDO mv "$DOCUMENTDB_PG_DATA" "$aside"
  fi
  log "creating the PostgreSQL cluster in $DOCUMENTDB_PG_DATA"
  $SUDO install -d -o postgres -g postgres -m 0700 "$DOCUMENTDB_PG_DATA"
  pg_as "$PG_BIN/initdb" -D "$DOCUMENTDB_PG_DATA" -U postgres --auth=trust \
    --encoding=UTF8 --locale=C.UTF-8 >/dev/null
fi

# Our settings live in one file that every run rewrites; postgresql.conf includes it last.
pg_conf_new="$(cat <<CONF
# Written by scripts/start-test-services.sh on every run: edits here are overwritten.
listen_addresses = '127.0.0.1'
port = $DOCUMENTDB_PG_PORT
unix_socket_directories = '/var/run/postgresql'

# A test box of 2 cores; durability stays on (fsync, synchronous_commit: defaults).
max_connections = 200
shared_buffers = 256MB
effective_cache_size = 1GB
work_mem = 8MB
maintenance_work_mem = 128MB
max_worker_processes = 16
# Short queries only; JIT compiling them costs more than it saves (and the extensions are
# built without bitcode).
jit = off

# DocumentDB (README in shared/vendor/documentdb). Not set: enableSortbyIdPushDownToPrimaryKey,
# which this build (0.107-0) does not know (nor does it push a sort on _id down without it).
shared_preload_libraries = 'pg_cron,pg_documentdb_core,pg_documentdb'
cron.database_name = 'postgres'
cron.host = '127.0.0.1'
# DocumentDB schedules jobs every 2 seconds: neither log each run nor keep a row per run in
# cron.job_run_details (it would grow without end).
cron.log_run = off
cron.log_statement = off
documentdb.enableCompact = true
documentdb.enableLetAndCollationForQueryMatch = true
documentdb.enableNowSystemVariable = true
documentdb.enableSchemaValidation = true
documentdb.enableBypassDocumentValidation = true
documentdb.enableUserCrud = true
documentdb.maxUserLimit = 100
# New indexes use DocumentDB's composite operator class, which scans a range of a compound
# index's second key within its first (a customer's tasks created in a span: 2 ms instead
# of 18 ms at 100,000 tasks). The default (RUM) class matches each key on its own and
# intersects, so that cost grew with the customer. Existing indexes keep their class.
documentdb.defaultUseCompositeOpClass = on
CONF
)"
pg_conf="$DOCUMENTDB_PG_DATA/humantask.conf"
pg_conf_changed=no
if [ "$($SUDO cat "$pg_conf" 2>/dev/null)" != "$pg_conf_new" ]; then
  printf '%s\n' "$pg_conf_new" | pg_as tee "$pg_conf" >/dev/null
  pg_conf_changed=yes
fi
if ! $SUDO grep -qx "include 'humantask.conf'" "$DOCUMENTDB_PG_DATA/postgresql.conf"; then
  printf '\n%s\n' "include 'humantask.conf'" | pg_as tee -a "$DOCUMENTDB_PG_DATA/postgresql.conf" >/dev/null
  pg_conf_changed=yes
fi

pg_running() { pg_as "$PG_BIN/pg_ctl" -D "$DOCUMENTDB_PG_DATA" status >/dev/null 2>&1; }
pg_ready() {
  "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$DOCUMENTDB_PG_PORT" -U postgres -d postgres -t 2 >/dev/null 2>&1
}

if pg_running; then
  log "PostgreSQL already running ($DOCUMENTDB_PG_DATA, port $DOCUMENTDB_PG_PORT)"
  if [ "$pg_conf_changed" = yes ]; then
    log "its settings changed; reloading"
    pg_as "$PG_BIN/pg_ctl" -D "$DOCUMENTDB_PG_DATA" reload >/dev/null
  fi
else
  if port_open 127.0.0.1 "$DOCUMENTDB_PG_PORT"; then
    die "port $DOCUMENTDB_PG_PORT is taken by something else than the cluster in $DOCUMENTDB_PG_DATA"
  fi
  log "starting PostgreSQL ($DOCUMENTDB_PG_DATA on 127.0.0.1:$DOCUMENTDB_PG_PORT, log in $DOCUMENTDB_PG_LOG)"
  $SUDO touch "$DOCUMENTDB_PG_LOG"
  $SUDO chown postgres:postgres "$DOCUMENTDB_PG_LOG"
  if ! pg_as "$PG_BIN/pg_ctl" -D "$DOCUMENTDB_PG_DATA" -l "$DOCUMENTDB_PG_LOG" \
    -w -t "$DOCUMENTDB_PG_START_TIMEOUT" start >/dev/null; then
    tail -n 40 "$DOCUMENTDB_PG_LOG" || true
    die "PostgreSQL did not start within ${DOCUMENTDB_PG_START_TIMEOUT}s"
  fi
fi
deadline=$((SECONDS + DOCUMENTDB_PG_START_TIMEOUT))
until pg_ready; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    tail -n 40 "$DOCUMENTDB_PG_LOG" || true
    die "PostgreSQL does not accept connections on 127.0.0.1:$DOCUMENTDB_PG_PORT"
  fi
  sleep 0.5
done
pending="$(psql_pg -Atc "SELECT string_agg(name, ', ') FROM pg_settings WHERE pending_restart")"
if [ -n "$pending" ]; then
  log "WARNING: settings waiting for a PostgreSQL restart: $pending; run:"
  log "  runuser -u postgres -- $PG_BIN/pg_ctl -D $DOCUMENTDB_PG_DATA restart -m fast"
fi
if [ "$(psql_pg -Atc "SELECT count(*) FROM pg_extension WHERE extname = 'documentdb'")" != 1 ]; then
  log "creating extension documentdb (with pg_cron, vector, postgis, rum, ...)"
fi
psql_pg -c "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS documentdb CASCADE;"
log "PostgreSQL is up; documentdb $(psql_pg -Atc "SELECT extversion FROM pg_extension WHERE extname = 'documentdb'")"

# ---------------------------------------------------------------- FerretDB v2

ferretdb_ours() { # true if the pid file names a live process of $FERRETDB_BIN
  local pid exe
  pid="$(cat "$FERRETDB_PID_FILE" 2>/dev/null)" || return 1
  [ -n "$pid" ] || return 1
  exe="$(readlink "/proc/$pid/exe" 2>/dev/null)" || return 1
  [ "${exe% (deleted)}" = "$FERRETDB_BIN" ]
}

ferretdb_ping() {
  timeout 10 "$FERRETDB_BIN" ping --listen-addr=127.0.0.1:27017 --no-auth \
    --log-level=ERROR >/dev/null 2>&1 </dev/null
}

if port_open 127.0.0.1 27017; then
  if ferretdb_ours; then
    log "FerretDB already running (pid $(cat "$FERRETDB_PID_FILE"))"
  else
    log "WARNING: something else than $FERRETDB_BIN answers on 127.0.0.1:27017; leaving it"
  fi
else
  mkdir -p "$FERRETDB_STATE_DIR"
  log "starting FerretDB $("$FERRETDB_BIN" --version | sed -n 's/^version: //p') (state in $FERRETDB_STATE_DIR, log in $FERRETDB_LOG)"
  # nohup: it outlives this script; its output goes to the log file so it holds none of
  # the caller's pipes open.
  # WARN by default: at INFO it logs every command handled (set FERRETDB_LOG_LEVEL=INFO
  # or DEBUG for that; FerretDB reads the variable itself).
  FERRETDB_LOG_LEVEL="${FERRETDB_LOG_LEVEL:-WARN}" nohup "$FERRETDB_BIN" \
    --listen-addr=127.0.0.1:27017 \
    --postgresql-url="postgres://postgres@127.0.0.1:$DOCUMENTDB_PG_PORT/postgres?pool_max_conns=$FERRETDB_PG_POOL_MAX_CONNS" \
    --no-auth \
    --telemetry=disable \
    --debug-addr=- \
    --state-dir="$FERRETDB_STATE_DIR" \
    >>"$FERRETDB_LOG" 2>&1 </dev/null 3>&- &
  ferret_pid=$!
  echo "$ferret_pid" >"$FERRETDB_PID_FILE"
  deadline=$((SECONDS + FERRETDB_START_TIMEOUT))
  until port_open 127.0.0.1 27017 && ferretdb_ping; do
    if ! kill -0 "$ferret_pid" 2>/dev/null; then
      tail -n 40 "$FERRETDB_LOG" || true
      die "FerretDB exited before answering"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 40 "$FERRETDB_LOG" || true
      die "FerretDB did not answer on 127.0.0.1:27017 within ${FERRETDB_START_TIMEOUT}s"
    fi
    sleep 0.2
  done
  log "FerretDB is up (pid $ferret_pid)"
fi

log "services ready; for the tests:"
echo "export AMQP_URL=amqp://guest:guest@127.0.0.1:5672/$TEST_VHOST" >&3
echo "export MONGODB_URL=mongodb://127.0.0.1:27017/humantask_test" >&3
