#!/usr/bin/env bash
# RabbitMQ nodes of their own on this machine, beside any RabbitMQ already running (the
# one on 5672 is never touched): node N is `humantask-chaos-N@localhost`, AMQP on
# $BASE_PORT+N, Erlang distribution on $DIST_BASE_PORT+N, its data, logs and config under
# $STATE_DIR/nodeN, all nodes sharing one Erlang cookie ($STATE_DIR/home/.erlang.cookie).
# The management plugin stays off (its port would collide with the system broker's).
#
#   rabbitmq-nodes.sh start N        start node N (keeps its data) and wait until it is up
#   rabbitmq-nodes.sh join N         cluster node N with node 1 (N > 1; wipes N's data)
#   rabbitmq-nodes.sh kill N         kill -9 node N (its Erlang VM)
#   rabbitmq-nodes.sh stop-all       stop every node this script started (kill -9 if stuck)
#   rabbitmq-nodes.sh wipe           delete $STATE_DIR (after stop-all)
#   rabbitmq-nodes.sh ctl N ARGS...  rabbitmqctl against node N
#
# A three-node cluster: start 1; start 2; join 2; start 3; join 3. Runs as root or as
# the owner of $STATE_DIR; needs Debian's rabbitmq-server (scripts/install-rabbitmq.sh).
set -euo pipefail

STATE_DIR="${CHAOS_RABBITMQ_DIR:-/var/tmp/humantask-chaos/rabbitmq}"
BASE_PORT="${CHAOS_RABBITMQ_BASE_PORT:-5790}"
DIST_BASE_PORT="${CHAOS_RABBITMQ_DIST_BASE_PORT:-25790}"
START_TIMEOUT="${CHAOS_RABBITMQ_START_TIMEOUT:-180}"
RABBIT_BIN=/usr/lib/rabbitmq/bin

log() { echo "[rabbitmq-nodes] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

node_name() { echo "humantask-chaos-$1@localhost"; }

# The environment rabbitmq-server and rabbitmqctl read for node $1.
node_env() {
  local n="$1" dir="$STATE_DIR/node$1"
  export HOME="$STATE_DIR/home" # the shared Erlang cookie
  export RABBITMQ_NODENAME
  RABBITMQ_NODENAME="$(node_name "$n")"
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT=$((BASE_PORT + n))
  export RABBITMQ_DIST_PORT=$((DIST_BASE_PORT + n))
  export RABBITMQ_MNESIA_BASE="$dir/mnesia"
  export RABBITMQ_LOG_BASE="$dir/log"
  export RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf"
  export RABBITMQ_ADVANCED_CONFIG_FILE="$dir/advanced.config"
  export RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins"
  export RABBITMQ_PID_FILE="$dir/rabbitmq.pid"
  # rabbitmqctl's own distribution ports, away from the system broker's CLI range.
  export RABBITMQ_CTL_DIST_PORT_MIN=$((RABBITMQ_DIST_PORT + 10000))
  export RABBITMQ_CTL_DIST_PORT_MAX=$((RABBITMQ_DIST_PORT + 10010))
}

ctl() { # node args...
  local n="$1"
  shift
  (node_env "$n" && "$RABBIT_BIN/rabbitmqctl" -n "$(node_name "$n")" "$@")
}

prepare() { # node
  local n="$1" dir="$STATE_DIR/node$1"
  mkdir -p "$STATE_DIR/home" "$dir/mnesia" "$dir/log"
  if [ ! -s "$STATE_DIR/home/.erlang.cookie" ]; then
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$STATE_DIR/home/.erlang.cookie")
  fi
  chmod 400 "$STATE_DIR/home/.erlang.cookie"
  echo '[].' >"$dir/enabled_plugins"
  : >"$dir/rabbitmq-env.conf"
  echo '[].' >"$dir/advanced.config"
  cat >"$dir/rabbitmq.conf" <<EOF
listeners.tcp.1 = 127.0.0.1:$((BASE_PORT + n))
loopback_users = none
# A killed node comes back and rejoins without waiting for its peers' tables for long.
mnesia_table_loading_retry_timeout = 10000
mnesia_table_loading_retry_limit = 30
EOF
}

start() { # node
  local n="$1" dir="$STATE_DIR/node$1"
  prepare "$n"
  log "starting $(node_name "$n") (AMQP 127.0.0.1:$((BASE_PORT + n)); log $dir/log)"
  (
    node_env "$n"
    # setsid: the node outlives nothing of the caller's job control; 3>&-: no inherited pipes.
    setsid "$RABBIT_BIN/rabbitmq-server" >>"$dir/log/startup.log" 2>&1 </dev/null 3>&- &
    echo $! >"$dir/launcher.pid"
  )
  local deadline=$((SECONDS + START_TIMEOUT))
  until ctl "$n" -q await_startup --timeout 10 >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ] || ! kill -0 "$(cat "$dir/launcher.pid")" 2>/dev/null; then
      tail -n 40 "$dir/log/startup.log" >&2 || true
      die "$(node_name "$n") did not start within ${START_TIMEOUT}s"
    fi
    sleep 1
  done
  ctl "$n" -q eval 'list_to_integer(os:getpid()).' >"$dir/beam.pid"
  log "$(node_name "$n") is up (pid $(cat "$dir/beam.pid"))"
}

join() { # node
  local n="$1"
  [ "$n" -gt 1 ] || die "node 1 is the one the others join"
  ctl "$n" -q stop_app
  ctl "$n" -q reset
  ctl "$n" -q join_cluster "$(node_name 1)"
  ctl "$n" -q start_app
  ctl "$n" -q await_startup --timeout "$START_TIMEOUT"
  log "$(node_name "$n") joined $(node_name 1)"
}

kill_node() { # node
  local dir="$STATE_DIR/node$1"
  [ -s "$dir/beam.pid" ] || die "node $1 has no pid file"
  kill -9 "$(cat "$dir/beam.pid")" 2>/dev/null || true
  log "killed $(node_name "$1") (pid $(cat "$dir/beam.pid"))"
  rm -f "$dir/beam.pid"
}

stop_all() {
  local dir n pid
  for dir in "$STATE_DIR"/node*; do
    [ -s "$dir/beam.pid" ] || continue
    n="${dir##*node}"
    pid="$(cat "$dir/beam.pid")"
    if kill -0 "$pid" 2>/dev/null; then
      ctl "$n" -q stop >/dev/null 2>&1 || kill -9 "$pid" 2>/dev/null || true
      # `stop` returns once the node has said it stops; wait for the VM itself.
      for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      log "stopped $(node_name "$n")"
    fi
    rm -f "$dir/beam.pid"
  done
}

case "${1:-}" in
start) start "$2" ;;
join) join "$2" ;;
kill) kill_node "$2" ;;
stop-all) stop_all ;;
wipe) rm -rf "$STATE_DIR" ;;
ctl)
  n="$2"
  shift 2
  ctl "$n" "$@"
  ;;
*) die "usage: $0 start N | join N | kill N | stop-all | wipe | ctl N ARGS..." ;;
esac
