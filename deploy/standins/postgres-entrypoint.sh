#!/bin/bash
# Entrypoint of the stand-in for ghcr.io/ferretdb/postgres-documentdb: PostgreSQL 15 with
# DocumentDB, configured like that image from the environment the official postgres
# image reads (POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB, PGDATA). On an empty data
# directory it creates the cluster (POSTGRES_USER is its superuser, password required,
# SCRAM over TCP) and the documentdb extension; then it runs `postgres` as PID 1, so
# `docker stop` shuts it down cleanly.
set -euo pipefail

PGDATA="${PGDATA:-/var/lib/postgresql/data}"
export PGDATA
PG_BIN=/usr/lib/postgresql/15/bin

if [ "$(id -u)" = 0 ]; then
  install -d -o postgres -g postgres -m 0700 "$PGDATA"
  chown -R postgres:postgres "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ "${1:-postgres}" != postgres ]; then
  exec "$@"
fi

user="${POSTGRES_USER:-postgres}"
database="${POSTGRES_DB:-$user}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "postgres-documentdb: POSTGRES_PASSWORD is required" >&2
    exit 1
  fi
  "$PG_BIN/initdb" -D "$PGDATA" -U "$user" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
    --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  {
    echo "listen_addresses = '*'"
    echo "include '/etc/documentdb/documentdb.conf'"
  } >>"$PGDATA/postgresql.conf"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  # A server on the socket only while the extension is created.
  "$PG_BIN/pg_ctl" -D "$PGDATA" -w -o "-c listen_addresses=''" start >/dev/null
  if [ "$database" != postgres ]; then
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -U "$user" -d postgres \
      -v db="$database" <<<'CREATE DATABASE :"db";'
  fi
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -U "$user" -d postgres \
    -c "SET client_min_messages = warning; CREATE EXTENSION IF NOT EXISTS documentdb CASCADE;"
  "$PG_BIN/pg_ctl" -D "$PGDATA" -w -m fast stop >/dev/null
  echo "postgres-documentdb: cluster created in $PGDATA (superuser $user)"
fi

exec "$PG_BIN/postgres" -D "$PGDATA"
