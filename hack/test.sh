#!/usr/bin/env bash
# `make test`: formatting, clippy and the debug test build, then the
# environment and every test. Two builds run beside them, each printing
# progress: the Go tools and the linters' venv (hack/tools.sh, minutes on a
# new machine; its lines start with [devenv]) beside the Rust builds, since
# on two cores each fills the other's idle time (downloads, single-threaded
# compiles and links); and the static release binary (hack/image-binary.sh,
# the longest single build; lines start with [release]) at the lowest CPU
# priority, so that it takes only what the tools and the tests leave idle
# (the tests wait on IO most of the time). The test binaries that need it
# (the ones calling `static_binary()`) run last, once it is built.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CARGO="${CARGO:-cargo}"

stage() { printf '[test] %s: %s\n' "$(date -u +%T)" "$*"; }

start=$SECONDS
stage "building the tools beside the Rust builds"
# In a session of its own, so that stopping it stops every Go build it runs.
setsid hack/tools.sh build &
tools=$!
stage "the static release binary, beside the rest at the lowest CPU priority"
release_done=$(mktemp)
setsid bash -c 'set -o pipefail; status=0; nice -n 19 hack/image-binary.sh 2>&1 | sed -u "s/^/[release] /" || status=$?; echo "$status" > "$1"' \
  _ "$release_done" &
release=$!
# Whatever fails, neither build outlives this script.
trap 'kill -- -"$tools" 2>/dev/null || true; kill -- -"$release" 2>/dev/null || true' EXIT

rust_status=0
{
  stage "cargo fmt --check" && "$CARGO" fmt --check &&
    stage "cargo clippy" && "$CARGO" clippy --all-targets -- -D warnings &&
    stage "the debug test build" && "$CARGO" test --all-targets --no-run
} || rust_status=$?
if [[ $rust_status -ne 0 ]]; then
  stage "a Rust step failed after $((SECONDS - start))s (status $rust_status); stopping the other builds"
  exit "$rust_status"
fi

stage "clippy and the test build done in $((SECONDS - start))s; waiting for the tools"
tools_status=0
wait "$tools" || tools_status=$?
stage "tools done after $((SECONDS - start))s (status $tools_status)"
[[ $tools_status -eq 0 ]] || exit "$tools_status"

hack/devenv.sh up

# Test targets by the static binary: the ones that call `static_binary()`
# wait for the release build.
without_binary=(--lib --bins) with_binary=()
for file in tests/*.rs; do
  name=$(basename "$file" .rs)
  if grep -q 'static_binary()' "$file"; then
    with_binary+=(--test "$name")
  else
    without_binary+=(--test "$name")
  fi
done

test_status=0
stage "the tests; those of the static binary (${with_binary[*]}) wait for its build"
"$CARGO" test --no-fail-fast "${without_binary[@]}" || test_status=$?

stage "waiting for the static release binary"
wait "$release" || true
trap - EXIT
release_status=$(cat "$release_done" 2>/dev/null || echo 1)
rm -f "$release_done"
if [[ $release_status -ne 0 ]]; then
  stage "the static release binary failed (status $release_status)"
  exit "$release_status"
fi
stage "the tests of the static binary"
"$CARGO" test --no-fail-fast "${with_binary[@]}" || test_status=$?
stage "make test done after $((SECONDS - start))s (status $test_status)"
exit "$test_status"
