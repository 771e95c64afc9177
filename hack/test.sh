#!/usr/bin/env bash
# `make test`: formatting, clippy and the debug test build, then the
# environment and every test. On a new machine most of the time is builds,
# so they overlap where the tests do not need them yet (two cores: each
# build fills the others' idle time, the tests wait on IO most of theirs):
# - the Go tools (hack/tools.sh; lines start with [devenv]): first the core
#   (etcd, the Kubernetes commands, age) and the emulator's venv beside the
#   Rust builds; the rest (helm, the chart's linters, the GitOps health
#   checks, promtool) beside the first tests, at a lower CPU priority;
# - the static binary for the image and node tests (hack/image-binary.sh in
#   the unoptimized static-test profile: what they check does not depend on
#   optimization; lines start with [release]), from the start at the lowest
#   CPU priority, so that it takes only the time the others leave idle.
# The tests run in three groups: those that need neither, then those that
# name one of the other tools, then those that call `static_binary()` or
# `image_loaded()`; within a group, two test binaries at a time (run_tests).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CARGO="${CARGO:-cargo}"

stage() { printf '[test] %s: %s\n' "$(date -u +%T)" "$*"; }

# Runs the test binaries of these cargo targets, LPO_TEST_JOBS (2) at once:
# most of a test's time is waiting for the operator, the API server or the
# emulator, so one binary at a time (cargo test) left the cores half idle.
# Each binary's output is printed whole when it ends, as cargo test prints
# it. The slowest binaries (measured, docs/development.md) start first, so
# that no long one starts last; the others follow in name order. A binary
# runs after the others, by itself, when its source says "make test runs
# this binary alone" (it disturbs every client of the environment). What is
# account-wide in IAM (the password policy) a test sets only in an AWS
# account of its own (OwnAccount in tests/support).
run_tests() {
  local listing status=0
  listing=$(mktemp)
  "$CARGO" test --no-run --message-format=json-render-diagnostics "$@" >"$listing" || { rm -f "$listing"; return 1; }
  python3 - "$listing" <<'PY' >"$listing.order"
import json, sys
slow_first = ["ownership", "budget", "events", "tenancy", "faults", "governance", "trust", "operator", "devenv"]
binaries = {}
for line in open(sys.argv[1]):
    message = json.loads(line)
    if message.get("reason") == "compiler-artifact" and message.get("profile", {}).get("test") and message.get("executable"):
        binaries[message["target"]["name"] + " " + "/".join(message["target"]["kind"])] = message["executable"]
def alone(key):
    name, kind = key.split()
    if kind != "test":
        return False
    # The words as a reader sees them, wherever the comment wraps.
    words = " ".join(line.strip().lstrip("/!").strip() for line in open(f"tests/{name}.rs"))
    return "make test runs this binary alone" in " ".join(words.split())
rank = lambda key: (alone(key), slow_first.index(key.split()[0]) if key.split()[0] in slow_first else len(slow_first), key)
for key in sorted(binaries, key=rank):
    print("alone" if alone(key) else "pool", binaries[key])
PY
  local output_lock
  output_lock=$(mktemp)
  export output_lock
  # shellcheck disable=SC2016
  sed -n 's/^pool //p' "$listing.order" | xargs -d '\n' -r -P "${LPO_TEST_JOBS:-2}" -I{} bash -c '
    out=$(mktemp); status=0
    "$1" >"$out" 2>&1 || status=$?
    { flock 9; printf "\n     Running %s\n" "$1"; cat "$out"; } 9>>"$output_lock"
    rm -f "$out"; exit "$status"' _ {} || status=$?
  local binary
  while read -r binary; do
    printf '\n     Running %s (alone)\n' "$binary"
    "$binary" || status=$?
  done < <(sed -n 's/^alone //p' "$listing.order")
  rm -f "$listing" "$listing.order" "$output_lock"
  return "$status"
}

start=$SECONDS
stage "building the tools beside the Rust builds (the core first)"
core_done=$(mktemp)
rm -f "$core_done"
# In a session of its own, so that stopping it stops every Go build it runs.
# The rest yields to the tests (nice 10): their deadlines are real.
setsid bash -c 'hack/tools.sh build core && hack/devenv.sh install-emulator && touch "$1" && nice -n 10 hack/tools.sh build rest' _ "$core_done" &
tools=$!
stage "the static binary (static-test profile), beside the rest at the lowest CPU priority"
release_done=$(mktemp)
setsid bash -c 'set -o pipefail; status=0; LPO_STATIC_PROFILE=static-test nice -n 19 hack/image-binary.sh 2>&1 | sed -u "s/^/[release] /" || status=$?; echo "$status" > "$1"' \
  _ "$release_done" &
release=$!
# Whatever fails, neither build outlives this script.
trap 'kill -- -"$tools" 2>/dev/null || true; kill -- -"$release" 2>/dev/null || true; rm -f "$core_done" "$release_done"' EXIT

# (Measured: clippy beside the tests at nice 10, in a target dir of its own,
# took CPU from the core tools and started the tests later.)
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

stage "clippy and the test build done in $((SECONDS - start))s; waiting for the core tools"
while [[ ! -e "$core_done" ]]; do
  if ! kill -0 "$tools" 2>/dev/null; then
    tools_status=0
    wait "$tools" || tools_status=$?
    stage "the core tools failed (status $tools_status)"
    exit $((tools_status == 0 ? 1 : tools_status))
  fi
  sleep 2
done
stage "core tools done after $((SECONDS - start))s"
LPO_DEVENV_TOOLS=core hack/devenv.sh up

# Test targets by what they need beyond the environment: the tools built
# after the core (named in quotes in their source: "helm", "promtool", ...),
# or the static binary.
late_tools='"(helm|kstatus|flux-health|argocd-health|kube-score|kubeconform|promtool|checkov|LPO_OLDEST_KUBE_APISERVER)"'
first=(--lib --bins) with_tools=() with_binary=()
for file in tests/*.rs; do
  name=$(basename "$file" .rs)
  if grep -Eq 'static_binary\(\)|image_loaded\(\)' "$file"; then
    with_binary+=(--test "$name")
  elif grep -Eq "$late_tools" "$file"; then
    with_tools+=(--test "$name")
  else
    first+=(--test "$name")
  fi
done

test_status=0
stage "the tests; later: ${with_tools[*]} (the other tools), ${with_binary[*]} (the static binary)"
run_tests "${first[@]}" || test_status=$?

stage "waiting for the other tools"
tools_status=0
wait "$tools" || tools_status=$?
stage "tools done after $((SECONDS - start))s (status $tools_status)"
[[ $tools_status -eq 0 ]] || exit "$tools_status"
# (An empty group runs nothing: `cargo test` without a target runs all.)
if ((${#with_tools[@]})); then
  stage "the tests of the other tools"
  run_tests "${with_tools[@]}" || test_status=$?
fi

stage "waiting for the static binary"
wait "$release" || true
trap - EXIT
release_status=$(cat "$release_done" 2>/dev/null || true)
rm -f "$core_done" "$release_done"
if [[ "$release_status" != 0 ]]; then
  stage "the static binary failed (status ${release_status:-none: it was stopped})"
  exit 1
fi
if ((${#with_binary[@]})); then
  stage "the tests of the static binary"
  run_tests "${with_binary[@]}" || test_status=$?
fi
stage "make test done after $((SECONDS - start))s (status $test_status)"
exit "$test_status"
