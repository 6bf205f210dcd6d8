#!/usr/bin/env bash
# Builds the stand-ins for the database images the compose files name, for machines that
# reach no image registry (deploy/standins/Dockerfile; docs/operations/compose.md):
#
#   mongo:7                                                  FerretDB 2.7 + PostgreSQL 15
#                                                            with DocumentDB, one container
#   ghcr.io/ferretdb/postgres-documentdb:17-0.107.0-ferretdb-2.7.0   PostgreSQL + DocumentDB
#   ghcr.io/ferretdb/ferretdb:2.7.0                          FerretDB alone
#
# Needs the Docker engine and the base image of ../shared/docker/setup.sh
# (local/debian:bookworm). DocumentDB is built from the vendored tarballs by
# scripts/install-documentdb.sh, inside the image build. The first build takes a while
# (apt, then compiling DocumentDB and FerretDB); later ones reuse Docker's layer cache.
# An image that already exists under a name is kept unless REBUILD=1.
#
# Environment: DOCUMENTDB_VENDOR_DIR [<repo>/../shared/vendor/documentdb],
#   BASE_IMAGE [local/debian:bookworm], REBUILD [0].
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENDOR_DIR="${DOCUMENTDB_VENDOR_DIR:-$ROOT/../shared/vendor/documentdb}"
BASE_IMAGE="${BASE_IMAGE:-local/debian:bookworm}"
REBUILD="${REBUILD:-0}"

# target -> the name it stands in for (the compose files' image names; the unit tests
# check that they match).
TARGETS=(
  "mongo=mongo:7"
  "postgres-documentdb=ghcr.io/ferretdb/postgres-documentdb:17-0.107.0-ferretdb-2.7.0"
  "ferretdb=ghcr.io/ferretdb/ferretdb:2.7.0"
)

log() { printf '[build-standin-images %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 \
  || die "no $BASE_IMAGE: run ../shared/docker/setup.sh first"
[ -f "$VENDOR_DIR/SHA256SUMS" ] || die "no vendored DocumentDB sources in $VENDOR_DIR"

missing=()
for pair in "${TARGETS[@]}"; do
  image="${pair#*=}"
  if [ "$REBUILD" = 1 ] || ! docker image inspect "$image" >/dev/null 2>&1; then
    missing+=("$pair")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  log "all stand-ins exist (REBUILD=1 builds them again)"
  exit 0
fi

# The build context: the Dockerfile and its files, the install script, the tarballs.
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
cp -r "$ROOT/deploy/standins/." "$context/"
cp "$ROOT/scripts/install-documentdb.sh" "$context/"
mkdir "$context/vendor"
cp "$VENDOR_DIR"/*.tar.gz "$VENDOR_DIR/SHA256SUMS" "$context/vendor/"

for pair in "${missing[@]}"; do
  target="${pair%%=*}"
  image="${pair#*=}"
  log "building $image (target $target)"
  start=$SECONDS
  # The classic builder: `docker build` here has no buildx; every stage is cached.
  DOCKER_BUILDKIT=0 docker build --build-arg BASE_IMAGE="$BASE_IMAGE" \
    --target "$target" -t "$image" -t "humantask-standin/$target" "$context"
  log "built $image in $((SECONDS - start)) s ($(docker image inspect -f '{{.Size}}' "$image" \
    | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
done
