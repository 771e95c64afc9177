#!/usr/bin/env bash
# Builds the static (musl) release binary exactly as the Dockerfile does:
# `make image-binary` here, `RUN hack/image-binary.sh` in the image build.
# Output: ${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-musl/release/loginprofile-operator
# LPO_STATIC_PROFILE=static-test builds the same binary unoptimized into
# .../static-test/ instead: what `make test` checks in its image and on the node.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
TARGET=x86_64-unknown-linux-musl
PROFILE="${LPO_STATIC_PROFILE:-release}"

if ! rustup target list --installed | grep -qx "$TARGET"; then
  echo "[image-binary] adding the Rust target $TARGET"
  rustup target add "$TARGET"
fi
command -v musl-gcc >/dev/null 2>&1 || {
  echo "[image-binary] musl-gcc is missing: install musl-tools (Debian: apt-get install musl-tools)" >&2
  exit 1
}
# ring compiles C: use musl's compiler wrapper for the musl target.
export CC_x86_64_unknown_linux_musl=musl-gcc
echo "[image-binary] cargo build --profile $PROFILE --locked --target $TARGET (minutes on two cores; progress below)"
cargo build --profile "$PROFILE" --locked --target "$TARGET"
echo "[image-binary] built ${CARGO_TARGET_DIR:-target}/$TARGET/$PROFILE/loginprofile-operator"
