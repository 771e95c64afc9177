#!/usr/bin/env bash
# `make test`: formatting, clippy, the static release binary and the debug
# test build, then the environment and every test. The Go tools and the
# linters' venv (hack/tools.sh, minutes on a new machine) build beside the
# Rust builds: on two cores each fills the other's idle time (module and
# crate downloads, single-threaded compiles and links). Both print progress;
# the tools' lines start with [devenv].
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CARGO="${CARGO:-cargo}"

stage() { printf '[test] %s: %s\n' "$(date -u +%T)" "$*"; }

start=$SECONDS
stage "building the tools beside the Rust builds"
# In a session of its own, so that stopping it stops every Go build it runs.
setsid hack/tools.sh build &
tools=$!
# Whatever fails, the tools' build does not outlive this script.
trap 'kill -- -"$tools" 2>/dev/null || true' EXIT

rust_status=0
{
  stage "cargo fmt --check" && "$CARGO" fmt --check &&
    stage "cargo clippy" && "$CARGO" clippy --all-targets -- -D warnings &&
    stage "the static release binary" && hack/image-binary.sh &&
    stage "the debug test build" && "$CARGO" test --all-targets --no-run
} || rust_status=$?
if [[ $rust_status -ne 0 ]]; then
  stage "a Rust step failed after $((SECONDS - start))s (status $rust_status); stopping the tools' build"
  exit "$rust_status"
fi
stage "Rust builds done in $((SECONDS - start))s; waiting for the tools"
tools_status=0
wait "$tools" || tools_status=$?
trap - EXIT
stage "tools done after $((SECONDS - start))s (status $tools_status)"
[[ $tools_status -eq 0 ]] || exit "$tools_status"

hack/devenv.sh up
stage "the tests"
"$CARGO" test --all-targets --no-fail-fast
