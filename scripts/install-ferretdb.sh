#!/usr/bin/env bash
# Builds FerretDB v1.24.1 (a MongoDB wire-protocol server on SQLite) from the Go module
# proxy. MongoDB itself has no package on the registries our CI reaches; FerretDB lets the
# tests talk to a real MongoDB-protocol server instead of a mock.
set -euo pipefail
VERSION="${FERRETDB_VERSION:-v1.24.1}"
PREFIX="${FERRETDB_PREFIX:-/opt/ferretdb}"
BIN="$PREFIX/bin/ferretdb"

if [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -q "${VERSION#v}"; then
  echo "ferretdb $VERSION already at $BIN"
  exit 0
fi

src=$(go mod download -json "github.com/FerretDB/FerretDB@$VERSION" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
work=$(mktemp -d)
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
cp -r "$src/." "$work/"
chmod -R u+w "$work"
# Without this file the binary panics at start (the module zip does not carry it).
echo "$VERSION" > "$work/build/version/version.txt"
mkdir -p "$PREFIX/bin"
(cd "$work" && go build -o "$BIN" ./cmd/ferretdb)
echo "built $BIN"
