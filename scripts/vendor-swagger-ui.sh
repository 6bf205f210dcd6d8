#!/usr/bin/env bash
# Vendors Swagger UI's browser files into the gateway's package data, from the npm
# package swagger-ui-dist (docs/architecture/decisions/api-reference-page.md).
#
#   scripts/vendor-swagger-ui.sh VERSION
#
# Fetches swagger-ui-dist@VERSION with `npm pack` (the registry checks its own integrity
# hash), prints the archive's SHA-256, copies the bundle, the stylesheet and the licence
# files into services/gateway/humantask_gateway/reference/, and prints each file's
# SHA-256. Record the version and every sum in reference/VENDORED.md: a unit test
# (tests/unit/test_reference_views.py) checks the shipped files against it.
set -euo pipefail

VERSION="${1:?usage: scripts/vendor-swagger-ui.sh VERSION (e.g. 5.36.0)}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/services/gateway/humantask_gateway/reference"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "swagger-ui-dist@$VERSION" >/dev/null)
archive="$work/swagger-ui-dist-$VERSION.tgz"
[ -f "$archive" ] || { echo "npm pack made no $archive" >&2; exit 1; }
echo "swagger-ui-dist-$VERSION.tgz sha256 $(sha256sum "$archive" | cut -d' ' -f1)"
tar -xzf "$archive" -C "$work"
mkdir -p "$DEST"
cp "$work/package/swagger-ui-bundle.js" "$work/package/swagger-ui.css" \
  "$work/package/swagger-ui-bundle.js.LICENSE.txt" "$DEST/"
cp "$work/package/LICENSE" "$DEST/swagger-ui-LICENSE"
cp "$work/package/NOTICE" "$DEST/swagger-ui-NOTICE"
(cd "$DEST" && sha256sum swagger-ui-bundle.js swagger-ui.css swagger-ui-LICENSE swagger-ui-NOTICE \
  swagger-ui-bundle.js.LICENSE.txt)
