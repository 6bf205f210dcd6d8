#!/bin/bash
# Entrypoint of the stand-in for mongo:7: FerretDB 2.7 (the MongoDB wire protocol, on
# 27017) over PostgreSQL 15 with DocumentDB, both in this one container, data in /data/db
# as with the real image. What it honours of the real image's environment:
# MONGO_INITDB_ROOT_USERNAME / MONGO_INITDB_ROOT_PASSWORD (an administrator, created once,
# on an empty data directory). What it does not: /docker-entrypoint-initdb.d, mongosh,
# replica sets. PostgreSQL listens on no TCP port: only FerretDB reaches it (the socket),
# and every client of 27017 must authenticate (FerretDB checks passwords against
# PostgreSQL's roles). It logs "Waiting for connections" when ready, as mongod does.
set -euo pipefail

DATA=/data/db
PGDATA="$DATA/postgresql"
STATE="$DATA/ferretdb-state"
PG_BIN=/usr/lib/postgresql/15/bin
SOCKETS=/var/run/postgresql

if [ "$(id -u)" = 0 ]; then
  install -d -o postgres -g postgres -m 0755 "$DATA"
  install -d -o postgres -g postgres -m 2775 "$SOCKETS"
  chown -R postgres:postgres "$DATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ "${1:-mongod}" != mongod ]; then
  exec "$@"
fi

psql_local() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCKETS" -U postgres -d postgres "$@"; }

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  install -d -m 0700 "$PGDATA"
  "$PG_BIN/initdb" -D "$PGDATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  {
    echo "listen_addresses = ''"
    echo "unix_socket_directories = '$SOCKETS'"
    echo "include '/etc/documentdb/documentdb.conf'"
    # New indexes use DocumentDB's composite operator class (docs/operations/compose.md).
    echo "documentdb.defaultUseCompositeOpClass = on"
  } >>"$PGDATA/postgresql.conf"
  "$PG_BIN/pg_ctl" -D "$PGDATA" -w start >/dev/null
  psql_local -c "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS documentdb CASCADE;"
  if [ -n "${MONGO_INITDB_ROOT_USERNAME:-}" ]; then
    if [ -z "${MONGO_INITDB_ROOT_PASSWORD:-}" ]; then
      echo "mongo stand-in: MONGO_INITDB_ROOT_PASSWORD is required with MONGO_INITDB_ROOT_USERNAME" >&2
      exit 1
    fi
    # What DocumentDB's createUser does for the roles clusterAdmin + readWriteAnyDatabase.
    psql_local -v user="$MONGO_INITDB_ROOT_USERNAME" -v password="$MONGO_INITDB_ROOT_PASSWORD" <<'SQL'
CREATE ROLE :"user" WITH LOGIN PASSWORD :'password';
GRANT documentdb_admin_role TO :"user";
SQL
    echo "mongo stand-in: administrator $MONGO_INITDB_ROOT_USERNAME created"
  fi
  "$PG_BIN/pg_ctl" -D "$PGDATA" -w -m fast stop >/dev/null
fi

mkdir -p "$STATE"
"$PG_BIN/postgres" -D "$PGDATA" &
postgres_pid=$!
ferretdb_pid=""

stop() {
  [ -n "$ferretdb_pid" ] && kill -TERM "$ferretdb_pid" 2>/dev/null && wait "$ferretdb_pid" || true
  kill -INT "$postgres_pid" 2>/dev/null || true # fast shutdown
  wait "$postgres_pid" || true
}
trap 'stop; exit 0' TERM INT

until "$PG_BIN/pg_isready" -q -h "$SOCKETS" -U postgres -d postgres; do
  kill -0 "$postgres_pid" 2>/dev/null || { echo "mongo stand-in: PostgreSQL exited" >&2; exit 1; }
  sleep 0.2
done

FERRETDB_LOG_LEVEL="${FERRETDB_LOG_LEVEL:-warn}" /usr/local/bin/ferretdb \
  --listen-addr=:27017 \
  --postgresql-url="postgres://postgres@/postgres?host=$SOCKETS" \
  --state-dir="$STATE" \
  --telemetry=disable \
  --debug-addr=- &
ferretdb_pid=$!

until /usr/local/bin/ferretdb ping --listen-addr=127.0.0.1:27017 --log-level=error >/dev/null 2>&1; do
  kill -0 "$ferretdb_pid" 2>/dev/null || { echo "mongo stand-in: FerretDB exited" >&2; stop; exit 1; }
  sleep 0.2
done
echo '{"msg":"Waiting for connections","attr":{"port":27017},"stand-in":"FerretDB 2.7 on PostgreSQL 15 with DocumentDB"}'

# Either process ending ends the container (compose's restart policy brings it back).
set +e
wait -n "$postgres_pid" "$ferretdb_pid"
status=$?
stop
exit "$status"
