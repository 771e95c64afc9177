#!/usr/bin/env bash
# `make release`: writes a release into dist/ (docs/install.md, step 0):
# the OCI image archive and its digest, the packaged chart, a CycloneDX SBOM
# of the binary's crates, the dependency license check, and SHA-256 sums.
# Everything is built here, from the registries only; cargo-cyclonedx and
# cargo-deny are installed once into the tool cache, pinned.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=hack/tools.sh
source "$ROOT/hack/tools.sh"

CYCLONEDX_VERSION=0.5.9
DENY_VERSION=0.20.2
CARGO_TOOLS="$LPO_CACHE/cargo-tools"
TARGET=x86_64-unknown-linux-musl
VERSION="$(cargo metadata --no-deps --format-version 1 | jq -r '.packages[] | select(.name == "loginprofile-operator") | .version')"
DIST="$ROOT/dist"
BINARY="${CARGO_TARGET_DIR:-$ROOT/target}/$TARGET/release/loginprofile-operator"

log() { printf '[release] %s\n' "$*" >&2; }

cargo_tool() { # NAME CRATE VERSION
  local name="$1" crate="$2" version="$3"
  [[ -x "$CARGO_TOOLS/$crate-$version/bin/$name" ]] && return 0
  log "installing $crate $version (once; minutes on two cores)"
  cargo install --locked --quiet --root "$CARGO_TOOLS/$crate-$version" "$crate" --version "$version"
}

[[ -x "$BINARY" ]] || { echo "[release] $BINARY is missing: run make image-binary" >&2; exit 1; }
rm -rf "$DIST"; mkdir -p "$DIST"

log "image $VERSION"
python3 hack/oci-image.py "$BINARY" "$DIST/loginprofile-operator-$VERSION.oci.tar" "loginprofile-operator:$VERSION" >&2
python3 - "$DIST/loginprofile-operator-$VERSION.oci.tar" >"$DIST/IMAGE_DIGEST" <<'PY'
import json, sys, tarfile
with tarfile.open(sys.argv[1]) as archive:
    index = json.load(archive.extractfile("index.json"))
print(index["manifests"][0]["digest"])
PY

log "chart $VERSION"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
build_helm
"$HELM_BIN/helm" package charts/loginprofile-operator --destination "$DIST" >&2

log "SBOM (cargo cyclonedx $CYCLONEDX_VERSION)"
cargo_tool cargo-cyclonedx cargo-cyclonedx "$CYCLONEDX_VERSION"
PATH="$CARGO_TOOLS/cargo-cyclonedx-$CYCLONEDX_VERSION/bin:$PATH" \
  cargo cyclonedx --format json --spec-version 1.5 --target "$TARGET" --override-filename loginprofile-operator.cdx >&2
mv loginprofile-operator.cdx.json "$DIST/sbom.cdx.json"

log "license check (cargo deny $DENY_VERSION, deny.toml)"
cargo_tool cargo-deny cargo-deny "$DENY_VERSION"
"$CARGO_TOOLS/cargo-deny-$DENY_VERSION/bin/cargo-deny" --offline check licenses >"$DIST/licenses.txt" 2>&1 \
  || { cat "$DIST/licenses.txt" >&2; echo "[release] a dependency's license is not allowed by deny.toml" >&2; exit 1; }

(cd "$DIST" && sha256sum -- * >SHA256SUMS)
log "wrote $DIST:"
ls -l "$DIST" >&2
