#!/usr/bin/env bash
# Installs the test/local database engine: PostgreSQL 15 (Debian's) with the DocumentDB
# extension, and FerretDB v2 (MongoDB wire protocol on top of it). Root on Debian 12.
#
#   1. Debian packages (build tools, PostGIS, RUM, ...), pinned to the installed
#      postgresql-15 so the server is never upgraded behind our back;
#   2. from source archives (fetch_sources: a local copy, or upstream's releases, each
#      checked against scripts/documentdb-sources.sha256): libbson 1.28.0 into a private
#      prefix, pgvector 0.8.0, pg_cron 1.6.3, DocumentDB (pg_documentdb_core, then
#      pg_documentdb) into PostgreSQL's own directories;
#   3. FerretDB v2.7.0 from the Go module proxy into $FERRETDB_PREFIX/bin/ferretdb.
#
# Idempotent: every step that is already done is skipped, so a second run builds nothing.
# It does not create or start a database: scripts/start-test-services.sh does.
#
#   scripts/install-documentdb.sh                         install (as root)
#   scripts/install-documentdb.sh --fetch-only DIR [NAME...]
#       only fetch and check the source archives (all, or those named) into DIR; no root
#
# Environment (defaults in brackets):
#   DOCUMENTDB_VENDOR_DIR       a local copy of the archives; when unset,
#                               <repo>/../shared/vendor/documentdb if it exists, otherwise
#                               the archives are downloaded
#   DOCUMENTDB_SOURCES_BASE_URL [https://github.com]   where the downloads come from; set
#                               (to a mirror) and no DOCUMENTDB_VENDOR_DIR: download
#   HUMANTASK_BUILD_DIR         [/var/tmp/humantask-build]  sources, objects, libbson
#   FERRETDB_PREFIX             [/opt/ferretdb2]       FerretDB goes to bin/ferretdb
# Progress goes to stderr.
set -euo pipefail
exec 1>&2

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$PATH:/usr/sbin:/sbin:/usr/local/go/bin"

if [ -n "${DOCUMENTDB_VENDOR_DIR:-}" ]; then
  VENDOR_DIR="$DOCUMENTDB_VENDOR_DIR"
elif [ -z "${DOCUMENTDB_SOURCES_BASE_URL:-}" ] && [ -d "$ROOT/../shared/vendor/documentdb" ]; then
  VENDOR_DIR="$ROOT/../shared/vendor/documentdb"
else
  VENDOR_DIR=""  # download
fi
SUMS_FILE="$ROOT/scripts/documentdb-sources.sha256"
SOURCES_BASE_URL="${DOCUMENTDB_SOURCES_BASE_URL:-https://github.com}"
BUILD_DIR="${HUMANTASK_BUILD_DIR:-/var/tmp/humantask-build}"
SOURCES_DIR="$BUILD_DIR/sources"
FERRETDB_PREFIX="${FERRETDB_PREFIX:-/opt/ferretdb2}"
FERRETDB_VERSION="v2.7.0"
FERRETDB_BIN="$FERRETDB_PREFIX/bin/ferretdb"

PG_MAJOR=15
PG_CONFIG="/usr/lib/postgresql/$PG_MAJOR/bin/pg_config"
LIBBSON_VERSION="1.28.0"
LIBBSON_PREFIX="$BUILD_DIR/libbson-$LIBBSON_VERSION"
DOCUMENTDB_EXT_VERSION="0.107-0"

TARBALL_DOCUMENTDB="documentdb-3f80da90.tar.gz"
TARBALL_LIBBSON="mongo-c-driver-$LIBBSON_VERSION.tar.gz"
TARBALL_PG_CRON="pg_cron-v1.6.3.tar.gz"
TARBALL_PGVECTOR="pgvector-v0.8.0.tar.gz"

JOBS="$(nproc 2>/dev/null || echo 2)"
# No LLVM bitcode for PostgreSQL's JIT (start-test-services.sh turns jit off): a third less
# compile time.
PGXS_ARGS=(PG_CONFIG="$PG_CONFIG" with_llvm=no)

log() { echo "[install-documentdb] $*" >&2; }
die() { echo "[install-documentdb] ERROR: $*" >&2; exit 1; }

# ------------------------------------------------------------ source archives

sums_field() { # archive column -> that column of its line in $SUMS_FILE (2 archive sha256,
  #                                3 files sha256, 4 upstream path)
  awk -v f="$1" -v c="$2" '$1 == f { print $c }' "$SUMS_FILE"
}

files_digest() { # folder -> the files-sha256 of its contents (see $SUMS_FILE)
  (cd "$1" && {
    find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum
    find . -type l -printf '%p -> %l\n' | LC_ALL=C sort
  } | sha256sum | cut -d' ' -f1)
}

extract_top() { # archive dest -> unpacks into dest, prints its one top folder's path
  mkdir -p "$2"
  tar -xzf "$1" -C "$2" || die "$1 is not a gzipped tar archive"
  local tops=("$2"/*)
  [ "${#tops[@]}" -eq 1 ] && [ -d "${tops[0]}" ] || die "$1 does not unpack into one folder"
  # Folders the build never reads (mongo-c-driver's tests): not part of what is checked.
  rm -rf "${tops[0]}/src/libbson/tests" "${tops[0]}/src/libmongoc/tests"
  echo "${tops[0]}"
}

verify_download() { # name file -> dies unless file is the archive $SUMS_FILE names
  local want_archive want_files got scratch top
  want_archive="$(sums_field "$1" 2)"
  want_files="$(sums_field "$1" 3)"
  got="$(sha256sum "$2" | cut -d' ' -f1)"
  [ "$got" = "$want_archive" ] && return 0  # byte-identical to the local copies
  scratch="$(mktemp -d)"
  top="$(extract_top "$2" "$scratch")"
  got="$(files_digest "$top")"
  rm -rf "$scratch"
  if [ "$got" != "$want_files" ]; then
    die "the files of the downloaded $1 do not match $SUMS_FILE: sha256 $got, expected $want_files"
  fi
}

# Each archive named, checked, into $1: copied from the local copy ($VENDOR_DIR, checked
# byte for byte), or downloaded from upstream (checked by its files).
fetch_sources() { # dest archive...
  local dest="$1" name want got url
  shift
  mkdir -p "$dest"
  for name in "$@"; do
    want="$(sums_field "$name" 2)"
    [ -n "$want" ] || die "$name is not listed in $SUMS_FILE"
    if [ -n "$VENDOR_DIR" ]; then
      [ -f "$VENDOR_DIR/$name" ] || die "missing in $VENDOR_DIR (DOCUMENTDB_VENDOR_DIR): $name
  (unset DOCUMENTDB_VENDOR_DIR, with no ../shared/vendor/documentdb beside the clone, to download it)"
      got="$(sha256sum "$VENDOR_DIR/$name" | cut -d' ' -f1)"
      if [ "$got" != "$want" ]; then
        die "checksum mismatch for $VENDOR_DIR/$name: sha256 $got, $SUMS_FILE says $want"
      fi
      cp "$VENDOR_DIR/$name" "$dest/$name.part"
    else
      url="$SOURCES_BASE_URL/$(sums_field "$name" 4)"
      log "downloading $name from $url"
      curl -fsSL --retry 3 --connect-timeout 20 -o "$dest/$name.part" "$url" \
        || die "could not download $url (set DOCUMENTDB_VENDOR_DIR to a local copy)"
      verify_download "$name" "$dest/$name.part"
    fi
    mv -f "$dest/$name.part" "$dest/$name"
  done
  log "sources checked: $* (${VENDOR_DIR:-downloaded from $SOURCES_BASE_URL})"
}

if [ "${1:-}" = "--fetch-only" ]; then
  [ -n "${2:-}" ] || die "usage: $0 --fetch-only DIR [ARCHIVE...]"
  dest="$2"
  shift 2
  if [ "$#" -eq 0 ]; then
    set -- "$TARBALL_DOCUMENTDB" "$TARBALL_LIBBSON" "$TARBALL_PG_CRON" "$TARBALL_PGVECTOR"
  fi
  fetch_sources "$dest" "$@"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  die "run as root (it installs Debian packages and PostgreSQL extensions)"
fi

# ------------------------------------------------------------ Debian packages

APT=(apt-get -o DPkg::Lock::Timeout=600 -y)
export DEBIAN_FRONTEND=noninteractive
apt_updated=no

apt_update_once() {
  [ "$apt_updated" = yes ] && return 0
  log "apt-get update"
  local try
  for try in 1 2 3 4 5; do
    # The lists lock is separate from dpkg's; another apt-get update may hold it a moment.
    if apt-get -o DPkg::Lock::Timeout=600 update; then
      apt_updated=yes
      return 0
    fi
    log "apt-get update failed (try $try); retrying in 10s"
    sleep 10
  done
  die "apt-get update kept failing"
}

pkg_installed() { # package
  [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]
}

pkg_version() { # package -> installed version (empty if not installed)
  if pkg_installed "$1"; then dpkg-query -W -f='${Version}' "$1"; fi
}

apt_has_lists() {
  compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null
}

candidate_version() { # package -> apt's candidate version (empty if unknown)
  apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { if ($2 != "(none)") print $2 }'
}

PLAIN_PACKAGES=(build-essential cmake pkg-config libpcre2-dev libintelrdfpmath-dev libicu-dev
  libkrb5-dev postgresql-15-postgis-3 ca-certificates)
# Kept at the server's version (Debian ships them from one source package).
PINNED_PACKAGES=(postgresql-server-dev-15 postgresql-client-15 libpq5 libpq-dev)

packages_done() {
  local p
  pkg_installed postgresql-15 || return 1
  pkg_installed postgresql-15-rum || return 1
  pkg_installed postgresql-15-cron && return 1
  for p in "${PLAIN_PACKAGES[@]}" "${PINNED_PACKAGES[@]}"; do
    pkg_installed "$p" || return 1
  done
  return 0
}

# The newest postgresql-15-rum that installs next to postgresql-15=$1 without touching it
# (for 15.18 that is 1.3.13-1+b1: the security update wants a newer server).
pick_rum_version() { # pg_version
  local v
  for v in $(apt-cache madison postgresql-15-rum 2>/dev/null | awk -F'|' '{ gsub(/ /, "", $2); print $2 }'); do
    if apt-get -s -o Debug::NoLocking=1 install "postgresql-15=$1" "postgresql-15-rum=$v" >/dev/null 2>&1; then
      echo "$v"
      return 0
    fi
  done
  return 1
}

install_packages() {
  if pkg_installed postgresql-15-cron; then
    log "removing Debian's postgresql-15-cron (1.4: too old for DocumentDB; pg_cron is built from source)"
    "${APT[@]}" remove postgresql-15-cron
  fi
  if packages_done; then
    log "Debian packages present (postgresql-15 $(pkg_version postgresql-15))"
    return 0
  fi

  apt_has_lists || apt_update_once
  local pg_version
  pg_version="$(pkg_version postgresql-15)"
  if [ -z "$pg_version" ]; then
    pg_version="$(candidate_version postgresql-15)"
    if [ -z "$pg_version" ]; then
      apt_update_once
      pg_version="$(candidate_version postgresql-15)"
    fi
    [ -n "$pg_version" ] || die "apt knows no postgresql-15 package"
    log "postgresql-15 is not installed; installing $pg_version"
  fi

  local rum_version
  rum_version="$(pkg_version postgresql-15-rum)"
  if [ -z "$rum_version" ]; then
    rum_version="$(pick_rum_version "$pg_version" || true)"
    if [ -z "$rum_version" ] && [ "$apt_updated" = no ]; then
      apt_update_once
      rum_version="$(pick_rum_version "$pg_version" || true)"
    fi
    [ -n "$rum_version" ] || die "no postgresql-15-rum version installs next to postgresql-15=$pg_version"
  fi

  local args=("postgresql-15=$pg_version" "postgresql-15-rum=$rum_version" "${PLAIN_PACKAGES[@]}")
  local p v
  for p in "${PINNED_PACKAGES[@]}"; do
    v="$(pkg_version "$p")"
    if [ -n "$v" ] && [ "$v" != "$pg_version" ]; then
      log "note: $p is at $v, postgresql-15 at $pg_version; leaving $p as it is"
    fi
    args+=("$p=${v:-$pg_version}")
  done

  log "installing Debian packages: ${args[*]}"
  if ! "${APT[@]}" install --no-install-recommends "${args[@]}"; then
    [ "$apt_updated" = no ] || die "apt-get install failed"
    apt_update_once
    "${APT[@]}" install --no-install-recommends "${args[@]}" || die "apt-get install failed"
  fi
  if pkg_installed postgresql-15-cron; then
    "${APT[@]}" remove postgresql-15-cron
  fi
}

install_packages

[ -x "$PG_CONFIG" ] || die "$PG_CONFIG missing after the package install"
PKGLIBDIR="$("$PG_CONFIG" --pkglibdir)"
EXTDIR="$("$PG_CONFIG" --sharedir)/extension"

# ------------------------------------------------------------ extensions from source

control_version() { # extension -> default_version from its installed control file
  sed -n "s/^[[:space:]]*default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" \
    "$EXTDIR/$1.control" 2>/dev/null | head -n1
}

ext_installed() { # library extension version
  [ -f "$PKGLIBDIR/$1.so" ] && [ "$(control_version "$2")" = "$3" ]
}

pgvector_done() { ext_installed vector vector 0.8.0; }
pg_cron_done() { ext_installed pg_cron pg_cron 1.6; }
documentdb_core_done() { ext_installed pg_documentdb_core documentdb_core "$DOCUMENTDB_EXT_VERSION"; }
documentdb_done() { ext_installed pg_documentdb documentdb "$DOCUMENTDB_EXT_VERSION"; }
libbson_done() { [ -f "$LIBBSON_PREFIX/lib/pkgconfig/libbson-static-1.0.pc" ]; }

needed_tarballs=()
pgvector_done || needed_tarballs+=("$TARBALL_PGVECTOR")
pg_cron_done || needed_tarballs+=("$TARBALL_PG_CRON")
if ! documentdb_core_done || ! documentdb_done; then
  needed_tarballs+=("$TARBALL_DOCUMENTDB")
  libbson_done || needed_tarballs+=("$TARBALL_LIBBSON")
fi

if [ "${#needed_tarballs[@]}" -eq 0 ]; then
  log "pgvector, pg_cron, documentdb_core and documentdb are installed in $PKGLIBDIR"
else
  fetch_sources "$SOURCES_DIR" "${needed_tarballs[@]}"
fi

unpack() { # tarball folder -> fresh $BUILD_DIR/src/folder, whatever the archive's top folder
  local scratch top
  mkdir -p "$BUILD_DIR/src"
  rm -rf "${BUILD_DIR:?}/src/$2"
  scratch="$(mktemp -d "$BUILD_DIR/src/.unpack.XXXXXX")"
  top="$(extract_top "$SOURCES_DIR/$1" "$scratch")"
  mv "$top" "$BUILD_DIR/src/$2"
  rm -rf "$scratch"
}

if ! pgvector_done; then
  log "building pgvector 0.8.0"
  unpack "$TARBALL_PGVECTOR" pgvector
  make -C "$BUILD_DIR/src/pgvector" -j"$JOBS" "${PGXS_ARGS[@]}"
  make -C "$BUILD_DIR/src/pgvector" install "${PGXS_ARGS[@]}"
  pgvector_done || die "pgvector did not install into $PKGLIBDIR"
fi

if ! pg_cron_done; then
  log "building pg_cron 1.6.3"
  unpack "$TARBALL_PG_CRON" pg_cron
  make -C "$BUILD_DIR/src/pg_cron" -j"$JOBS" "${PGXS_ARGS[@]}"
  make -C "$BUILD_DIR/src/pg_cron" install "${PGXS_ARGS[@]}"
  pg_cron_done || die "pg_cron did not install into $PKGLIBDIR"
fi

if ! documentdb_core_done || ! documentdb_done; then
  if ! libbson_done; then
    log "building libbson $LIBBSON_VERSION into $LIBBSON_PREFIX"
    unpack "$TARBALL_LIBBSON" "mongo-c-driver-$LIBBSON_VERSION"
    src="$BUILD_DIR/src/mongo-c-driver-$LIBBSON_VERSION"
    rm -rf "$LIBBSON_PREFIX"
    cmake -S "$src" -B "$src/_build" \
      -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_INSTALL_PREFIX="$LIBBSON_PREFIX" \
      -DCMAKE_INSTALL_LIBDIR=lib \
      -DENABLE_MONGOC=OFF -DENABLE_TESTS=OFF -DENABLE_EXAMPLES=OFF \
      -DENABLE_STATIC=ON -DENABLE_ICU=OFF \
      -DCMAKE_C_FLAGS=-fPIC
    cmake --build "$src/_build" -j"$JOBS"
    cmake --install "$src/_build"
    libbson_done || die "libbson did not install into $LIBBSON_PREFIX"
  fi

  # Debian's libintelrdfpmath-dev has no .pc file; DocumentDB asks pkg-config for one.
  multiarch="$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)"
  mkdir -p "$BUILD_DIR/pkgconfig"
  cat >"$BUILD_DIR/pkgconfig/intelmathlib.pc" <<EOF
Name: intelmathlib
Description: Intel(R) Decimal Floating-Point Math Library (Debian's libintelrdfpmath-dev)
Version: 2.0.2
Libs: -L/usr/lib/$multiarch -lbidgcc000
Cflags: -I/usr/include
EOF
  export PKG_CONFIG_PATH="$LIBBSON_PREFIX/lib/pkgconfig:$BUILD_DIR/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"

  log "building DocumentDB (pg_documentdb_core, then pg_documentdb)"
  unpack "$TARBALL_DOCUMENTDB" documentdb
  for part in pg_documentdb_core pg_documentdb; do
    make -C "$BUILD_DIR/src/documentdb/$part" -j"$JOBS" "${PGXS_ARGS[@]}"
    make -C "$BUILD_DIR/src/documentdb/$part" install "${PGXS_ARGS[@]}"
  done
  documentdb_core_done || die "documentdb_core did not install into $PKGLIBDIR"
  documentdb_done || die "documentdb did not install into $PKGLIBDIR"
  log "DocumentDB $DOCUMENTDB_EXT_VERSION installed"
fi

# ------------------------------------------------------------ FerretDB v2

ferretdb_built() { # (grep -q on a pipe would SIGPIPE the writer and trip pipefail)
  local out
  [ -x "$FERRETDB_BIN" ] && out="$("$FERRETDB_BIN" --version 2>/dev/null </dev/null)" \
    && grep -qx "version: $FERRETDB_VERSION" <<<"$out"
}

if ferretdb_built; then
  log "FerretDB $FERRETDB_VERSION already at $FERRETDB_BIN"
  exit 0
fi

command -v go >/dev/null 2>&1 \
  || die "no 'go' on PATH (nor in /usr/local/go/bin); FerretDB $FERRETDB_VERSION needs Go >= 1.25"
# A machine-wide GOTOOLCHAIN=local (go env) would refuse a go older than go.mod's; auto
# fetches that toolchain from the module proxy, and only when the local go is too old.
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"
# The build folder is no VCS checkout; the module's go.mod/go.sum are complete.
export GOFLAGS="-buildvcs=false -mod=mod"

log "building FerretDB $FERRETDB_VERSION with $(go version)"
download_json="$(go mod download -json "github.com/FerretDB/FerretDB/v2@$FERRETDB_VERSION")"
src="$(sed -n 's/^[[:space:]]*"Dir":[[:space:]]*"\(.*\)",\{0,1\}$/\1/p' <<<"$download_json")"
if [ -z "$src" ] || [ ! -d "$src" ]; then
  die "go mod download gave no source folder: $download_json"
fi

work="$BUILD_DIR/ferretdb-$FERRETDB_VERSION"
if [ -d "$work" ]; then chmod -R u+w "$work"; rm -rf "$work"; fi
mkdir -p "$work"
cp -r "$src/." "$work/"
chmod -R u+w "$work" # the module cache is read-only
# Without this file the binary panics at start (the module zip does not carry it).
echo "$FERRETDB_VERSION" >"$work/build/version/version.txt"
mkdir -p "$FERRETDB_PREFIX/bin"
(cd "$work" && go build -o "$FERRETDB_BIN.tmp" ./cmd/ferretdb)
mv -f "$FERRETDB_BIN.tmp" "$FERRETDB_BIN"
ferretdb_built || die "$FERRETDB_BIN does not report $FERRETDB_VERSION"
log "built $FERRETDB_BIN"
