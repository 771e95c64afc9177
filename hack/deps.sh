#!/usr/bin/env bash
# The one place that knows which system packages the project needs. Every
# entry point (`make demo`, `make test`, `make bench`, `make devenv-up`, and so
# CI) runs it first. Checks take milliseconds; something missing is installed
# with apt-get when we are root on Debian/Ubuntu, and otherwise we stop at
# once with the exact command to run.
#
# Not installed here, because distributions ship versions too old for us:
# Rust (rustup) and Go 1.26+ (the health checks' go.mod files need it).
# Those two, Python 3.9+, make and a C compiler are what must exist before
# the first command (README, "Set up").
set -euo pipefail

log() { printf '[deps] %s\n' "$*" >&2; }
die() { printf '[deps] error: %s\n' "$*" >&2; exit 1; }

# Debian package -> the check that proves it is there.
declare -A CHECKS=(
  [musl-tools]='command -v musl-gcc'
  [python3-venv]='python3 -c "import venv, ensurepip"'
  [jq]='command -v jq'
  [curl]='command -v curl'
  [openssl]='command -v openssl'
  [ca-certificates]='test -s /etc/ssl/certs/ca-certificates.crt'
  [bsdextrautils]='command -v column'
  # The dev environment's node (hack/node.sh).
  [containerd]='command -v containerd && command -v ctr'
  [runc]='command -v runc'
  [containernetworking-plugins]='test -x /usr/lib/cni/bridge'
  [iptables]='command -v iptables'
  [iproute2]='command -v ip'
  # tests/leader.rs runs a standby whose clock is ahead.
  [libfaketime]='compgen -G "/usr/lib/*/faketime/libfaketime.so.1"'
  # tests/delivery.rs decrypts an OpenPGP message as a person would.
  [gpg]='command -v gpg'
  [gpg-agent]='command -v gpg-agent && command -v gpgconf'
)
# Fixed order, so messages and installs are the same on every machine.
PACKAGES=(musl-tools python3-venv jq curl openssl ca-certificates bsdextrautils
  containerd runc containernetworking-plugins iptables iproute2 libfaketime gpg gpg-agent)

# Prerequisites that no package here provides (Debian's Go is too old).
check_toolchains() {
  command -v cargo >/dev/null 2>&1 && command -v rustup >/dev/null 2>&1 \
    || die "Rust is not installed: install it with rustup (https://rustup.rs) and run again."
  command -v go >/dev/null 2>&1 \
    || die "Go is not installed: install Go 1.26 or newer (https://go.dev/doc/install) and run again."
  command -v python3 >/dev/null 2>&1 \
    || die "python3 is not installed: install Python 3.9 or newer (Debian: apt-get install python3 python3-venv) and run again."
  command -v cc >/dev/null 2>&1 \
    || die "no C compiler (cc): install gcc (Debian: apt-get install build-essential) and run again."
}

missing=()
for package in "${PACKAGES[@]}"; do
  # LPO_DEPS_ASSUME_MISSING lets a test see the refusal without removing a package.
  if [[ " ${LPO_DEPS_ASSUME_MISSING:-} " == *" $package "* ]] || ! bash -c "${CHECKS[$package]}" >/dev/null 2>&1; then
    missing+=("$package")
  fi
done
((${#missing[@]} == 0)) && { check_toolchains; exit 0; }

command="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
  die "missing: ${missing[*]} (Debian package names). Install them with your package manager and run again."
fi
if [[ $(id -u) -ne 0 ]]; then
  die "missing Debian packages: ${missing[*]}. Run this as root, then run make again:
    sudo sh -c '$command'"
fi
log "installing from Debian: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Installing containerd must not start a system containerd: the node runs
# its own (hack/node.sh), and nothing else may be left running.
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for package in "${missing[@]}"; do
  bash -c "${CHECKS[$package]}" >/dev/null 2>&1 || die "installed $package, but its check still fails: ${CHECKS[$package]}"
done
log "installed: ${missing[*]}"
check_toolchains
