#!/usr/bin/env bash
# Builds the pinned control-plane tools (kube-apiserver, kube-controller-manager,
# kubectl, etcd, helm) from the Go module proxy into a cache outside the
# repository, once per version. Sourced by hack/devenv.sh; `hack/tools.sh build`
# also works on its own (`build core`: what the environment runs, and age;
# `build rest`: the others).
#
# Why a generated wrapper module: k8s.io/kubernetes (and etcd's server module)
# replace their sibling modules with local paths in go.mod, so `go install
# module@version` refuses them. A main module of our own that requires them and
# pins each replaced sibling to its published version builds the same code.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.34.4}"
# The oldest Kubernetes the chart supports (kubeVersion in Chart.yaml): its
# kube-apiserver alone, for tests/oldest_kubernetes.rs.
OLDEST_KUBE_VERSION="${OLDEST_KUBE_VERSION:-v1.28.15}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# hack/kstatus pins sigs.k8s.io/cli-utils in its go.mod; the cache key follows
# it and the program's source, so an edit rebuilds it.
KSTATUS_VERSION="$(awk '$1 == "sigs.k8s.io/cli-utils" {print $2}' "$HACK_DIR/kstatus/go.mod")-$(cat "$HACK_DIR/kstatus/main.go" "$HACK_DIR/kstatus/go.sum" | sha256sum | cut -c1-8)"

# hack/flux-health and hack/argocd-health: the health verdicts of Flux (its
# kstatus fork and CEL health checks) and Argo CD (its health package with
# our Lua), each pinned in its go.mod (their Kubernetes libraries differ, so
# they are two programs); keyed like kstatus.
source_key() { cat "$HACK_DIR/$1/main.go" "$HACK_DIR/$1/go.mod" "$HACK_DIR/$1/go.sum" | sha256sum | cut -c1-12; }
FLUX_HEALTH_VERSION="$(source_key flux-health)"
ARGOCD_HEALTH_VERSION="$(source_key argocd-health)"

# The chart's linters (tests/chart.rs): kube-score and kubeconform from the Go
# module proxy, checkov and Kubernetes' schemas from PyPI in a venv of their own.
KUBE_SCORE_VERSION="${KUBE_SCORE_VERSION:-v1.20.0}"
KUBECONFORM_VERSION="${KUBECONFORM_VERSION:-v0.8.0}"
# promtool, for the alerts' unit tests (tests/monitoring.rs): Prometheus'
# module (v0.316.0 is Prometheus 3.x), built without the service discovery
# plugins (the remove_all_sd tag) that promtool's rule tests never use.
PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-v0.316.0}"
# The age CLI (filippo.io/age, the format's reference implementation), for
# tests/delivery.rs: it decrypts what the operator encrypts, as a person would.
AGE_VERSION="${AGE_VERSION:-v1.3.2}"
LINTERS_VERSION="$(sha256sum "$HACK_DIR/requirements-linters.txt" | cut -c1-12)"

LPO_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/loginprofile-operator"
KUBE_BIN="$LPO_CACHE/bin/kubernetes-$KUBE_VERSION"
OLDEST_KUBE_BIN="$LPO_CACHE/bin/kubernetes-$OLDEST_KUBE_VERSION"
ETCD_BIN="$LPO_CACHE/bin/etcd-$ETCD_VERSION"
# helm is built as its own Makefile builds it (the Kubernetes version that
# `helm template` assumes follows its client-go); the suffix changes with
# those flags, so a helm cached without them is rebuilt.
HELM_BIN="$LPO_CACHE/bin/helm-$HELM_VERSION-kubeversion"
KSTATUS_BIN="$LPO_CACHE/bin/kstatus-$KSTATUS_VERSION"
FLUX_HEALTH_BIN="$LPO_CACHE/bin/flux-health-$FLUX_HEALTH_VERSION"
ARGOCD_HEALTH_BIN="$LPO_CACHE/bin/argocd-health-$ARGOCD_HEALTH_VERSION"
KUBE_SCORE_BIN="$LPO_CACHE/bin/kube-score-$KUBE_SCORE_VERSION"
KUBECONFORM_BIN="$LPO_CACHE/bin/kubeconform-$KUBECONFORM_VERSION"
PROMTOOL_BIN="$LPO_CACHE/bin/promtool-$PROMETHEUS_VERSION"
AGE_BIN="$LPO_CACHE/bin/age-$AGE_VERSION"
LINTERS_VENV="$LPO_CACHE/linters-$LINTERS_VERSION"

log() { printf '[devenv] %s\n' "$*" >&2; }
die() { printf '[devenv] error: %s\n' "$*" >&2; exit 1; }

# The core: what the environment runs (etcd, the Kubernetes commands) and
# age, which three test binaries decrypt with; seconds to build.
core_ready() {
  kubernetes_built && [[ -x "$ETCD_BIN/etcd" && -x "$AGE_BIN/age" ]]
}

# The rest: the chart's linters, the GitOps health checks, promtool, helm.
rest_ready() {
  [[ -x "$HELM_BIN/helm" && -x "$KSTATUS_BIN/kstatus" \
     && -x "$FLUX_HEALTH_BIN/flux-health" && -x "$ARGOCD_HEALTH_BIN/argocd-health" \
     && -x "$KUBE_SCORE_BIN/kube-score" && -x "$KUBECONFORM_BIN/kubeconform" && -x "$PROMTOOL_BIN/promtool" && -f "$LINTERS_VENV/.complete" \
     && -x "$OLDEST_KUBE_BIN/kube-apiserver" ]]
}

tools_ready() { core_ready && rest_ready; }

require_go() {
  command -v go >/dev/null 2>&1 || die "Go is not installed. Install Go 1.26 or newer (https://go.dev/doc/install, or your distribution's golang package) and run again."
  local v; v=$(go env GOVERSION | sed 's/^go//')
  local major=${v%%.*} rest=${v#*.}; local minor=${rest%%.*}
  (( major > 1 || minor >= 26 )) || die "Go $v is too old: the health checks' modules (hack/*-health, hack/kstatus) need Go 1.26 or newer."
}

require_disk() {
  # A cold build fills the Go module and build caches with about 4 GiB.
  local dir="$1" need_kib=$((6 * 1024 * 1024))
  mkdir -p "$dir"
  local avail; avail=$(df -Pk "$dir" | awk 'NR==2 {print $4}')
  (( avail >= need_kib )) || die "only $((avail / 1024)) MiB free under $dir; building the tools needs about 6 GiB. Free some space (or set XDG_CACHE_HOME to a larger disk) and run again."
}

# run_with_heartbeat LABEL LOGFILE CMD...: runs CMD with its output in LOGFILE and
# prints a progress line every 30 s, because a cold build takes minutes.
run_with_heartbeat() {
  local label="$1" logfile="$2"; shift 2
  local start=$SECONDS
  "$@" >"$logfile" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -0 "$pid" 2>/dev/null || break
    log "$label: still working, $((SECONDS - start))s so far, $(grep -c . "$logfile" || true) packages/lines logged"
  done
  if ! wait "$pid"; then
    tail -n 40 "$logfile" >&2
    die "$label failed after $((SECONDS - start))s; full log: $logfile"
  fi
  log "$label: done in $((SECONDS - start))s"
}

# wrapper_module DIR MODULE VERSION: writes a main module in DIR that requires
# MODULE@VERSION and turns each of MODULE's local-path replacements into a pin
# of the published sibling (k8s.io/X => k8s.io/X v0.<minor>.<patch> for
# Kubernetes; go.etcd.io/etcd/X => same version for etcd).
wrapper_module() {
  local dir="$1" module="$2" version="$3" sibling_version="$4"
  rm -rf "$dir"; mkdir -p "$dir"
  local gomod
  gomod=$(cd "$dir" && GOFLAGS=-mod=mod go mod download -json "$module@$version" | jq -r '.GoMod')
  [[ -f "$gomod" ]] || die "could not download $module@$version from the Go module proxy ($(go env GOPROXY))"
  {
    echo "module lpo.local/toolbuild"
    echo
    echo "go $(awk '$1 == "go" {print $2; exit}' "$gomod")"
    grep -E '^godebug ' "$gomod" || true
    echo
    echo "require $module $version"
    echo
    # Lines of the form "    name => ./path" or "replace name => ../path".
    # etcd also "replaces" modules it forbids with ./FORBIDDEN_DEPENDENCY: skip those.
    grep -v FORBIDDEN_DEPENDENCY "$gomod" \
      | sed -nE 's#^(replace)?[[:space:]]*([^[:space:]]+)[[:space:]]+=>[[:space:]]+\.\.?/.*$#\2#p' | sort -u \
      | while read -r sibling; do
          [[ "$sibling" == "$module" ]] && continue
          echo "replace $sibling => $sibling $sibling_version"
        done
  } >"$dir/go.mod"
}

# The control plane, kubectl, and the node's kubelet, kube-scheduler and
# kube-proxy (hack/node.sh): one wrapper module, one build.
KUBE_COMMANDS=(kube-apiserver kube-controller-manager kubectl kube-scheduler kubelet kube-proxy)

kubernetes_built() {
  local command
  for command in "${KUBE_COMMANDS[@]}"; do [[ -x "$KUBE_BIN/$command" ]] || return 1; done
}

build_kubernetes() {
  kubernetes_built && return 0
  log "building ${KUBE_COMMANDS[*]} $KUBE_VERSION from the Go module proxy (a cold build takes 15-25 minutes on 2 cores)"
  build_kubernetes_commands "$KUBE_VERSION" "$KUBE_BIN" "${KUBE_COMMANDS[@]}"
}

# The oldest supported kube-apiserver; beside the first tests, like the rest.
# Without the compiler's optimizations: it serves one short test, and they
# cost a quarter of its build (measured: 452 against 327 CPU-s, empty cache).
build_oldest_apiserver() {
  [[ -x "$OLDEST_KUBE_BIN/kube-apiserver" ]] && return 0
  log "building kube-apiserver $OLDEST_KUBE_VERSION (the oldest Kubernetes supported, unoptimized) from the Go module proxy"
  GCFLAGS="all=-N -l" build_kubernetes_commands "$OLDEST_KUBE_VERSION" "$OLDEST_KUBE_BIN" kube-apiserver
}

# build_kubernetes_commands VERSION BIN COMMAND...: Kubernetes' commands of
# VERSION into BIN, stamped with the version as Kubernetes' release build does
# (GCFLAGS, if set, passed to the compiler).
build_kubernetes_commands() {
  local version="$1" bin="$2" gcflags="${GCFLAGS:-}"; shift 2
  local work="$LPO_CACHE/build/kubernetes-$version"
  local minor_patch="${version#v1.}"
  wrapper_module "$work" k8s.io/kubernetes "$version" "v0.$minor_patch"
  local pkgs=("${@/#/k8s.io/kubernetes/cmd/}")
  run_with_heartbeat "resolving Kubernetes $version modules" "$work/get.log" \
    bash -c "cd '$work' && go get ${pkgs[*]/%/@$version}"
  local major=1 minor="${minor_patch%%.*}"
  local ldflags=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  mkdir -p "$bin.tmp"
  run_with_heartbeat "compiling Kubernetes $version" "$work/build.log" \
    bash -c "cd '$work' && CGO_ENABLED=0 go build -v -trimpath ${gcflags:+-gcflags '$gcflags'} -ldflags '-s -w $ldflags' -o '$bin.tmp/' ${pkgs[*]}"
  rm -rf "$bin"; mv "$bin.tmp" "$bin"
}

build_etcd() {
  [[ -x "$ETCD_BIN/etcd" ]] && return 0
  local work="$LPO_CACHE/build/etcd-$ETCD_VERSION"
  log "building etcd $ETCD_VERSION from the Go module proxy"
  wrapper_module "$work" go.etcd.io/etcd/server/v3 "$ETCD_VERSION" "$ETCD_VERSION"
  run_with_heartbeat "resolving etcd modules" "$work/get.log" \
    bash -c "cd '$work' && go get go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  mkdir -p "$ETCD_BIN.tmp"
  run_with_heartbeat "compiling etcd $ETCD_VERSION" "$work/build.log" \
    bash -c "cd '$work' && CGO_ENABLED=0 go build -v -trimpath -ldflags '-s -w' -o '$ETCD_BIN.tmp/etcd' go.etcd.io/etcd/server/v3"
  rm -rf "$ETCD_BIN"; mv "$ETCD_BIN.tmp" "$ETCD_BIN"
}

build_helm() {
  [[ -x "$HELM_BIN/helm" ]] && return 0
  local work="$LPO_CACHE/build/helm-$HELM_VERSION"
  log "building helm $HELM_VERSION from the Go module proxy"
  wrapper_module "$work" helm.sh/helm/v3 "$HELM_VERSION" "$HELM_VERSION"
  run_with_heartbeat "resolving helm modules" "$work/get.log" \
    bash -c "cd '$work' && go get helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  # Without these flags helm takes Kubernetes 1.20 for `helm template`, and a
  # chart's kubeVersion (>= 1.28 here) refuses it; helm's Makefile sets them
  # from client-go (v0.N is Kubernetes 1.N).
  local client_go minor ldflags
  client_go=$(cd "$work" && go list -f '{{.Version}}' -m k8s.io/client-go)
  minor=$(cut -d. -f2 <<<"$client_go")
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  for package in chartutil lint/rules; do
    ldflags+=" -X helm.sh/helm/v3/pkg/$package.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/$package.k8sVersionMinor=$minor"
  done
  mkdir -p "$HELM_BIN.tmp"
  run_with_heartbeat "compiling helm $HELM_VERSION" "$work/build.log" \
    bash -c "cd '$work' && CGO_ENABLED=0 go build -v -trimpath -ldflags '$ldflags' -o '$HELM_BIN.tmp/helm' helm.sh/helm/v3/cmd/helm"
  rm -rf "$HELM_BIN"; mv "$HELM_BIN.tmp" "$HELM_BIN"
}

# build_health_tool NAME BIN_DIR: the GitOps health programs in hack/NAME,
# for tests/gitops.rs: kstatus (sigs.k8s.io/cli-utils), and Argo CD's and
# Flux's own health code.
build_health_tool() {
  local name="$1" bin="$2"
  [[ -x "$bin/$name" ]] && return 0
  log "building $name (pinned in hack/$name/go.mod) from the Go module proxy"
  mkdir -p "$bin.tmp" "$LPO_CACHE/build"
  run_with_heartbeat "compiling $name" "$LPO_CACHE/build/$name.log" \
    bash -c "cd '$HACK_DIR/$name' && CGO_ENABLED=0 go build -mod=readonly -trimpath -ldflags '-s -w' -o '$bin.tmp/$name' ."
  rm -rf "$bin"; mv "$bin.tmp" "$bin"
}

# go_install NAME BIN_DIR PACKAGE@VERSION [BUILD_TAGS]: a tool whose module
# builds as it is.
go_install() {
  local name="$1" bin="$2" package="$3" tags="${4:-}"
  [[ -x "$bin/$name" ]] && return 0
  log "building $name ($package) from the Go module proxy"
  mkdir -p "$LPO_CACHE/build"; rm -rf "$bin.tmp"
  run_with_heartbeat "compiling $name" "$LPO_CACHE/build/$name.log" \
    env GOBIN="$bin.tmp" CGO_ENABLED=0 go install -tags "$tags" -trimpath -ldflags '-s -w' "$package"
  rm -rf "$bin"; mv "$bin.tmp" "$bin"
}

install_linters_venv() {
  [[ -f "$LINTERS_VENV/.complete" ]] && return 0
  log "installing checkov and Kubernetes' schemas into $LINTERS_VENV (pinned in hack/requirements-linters.txt)"
  rm -rf "$LINTERS_VENV"
  python3 -m venv "$LINTERS_VENV" || die "python3 -m venv failed; install python3-venv and run again"
  run_with_heartbeat "pip install (linters)" "$LPO_CACHE/build/linters-pip.log" \
    "$LINTERS_VENV/bin/pip" install --disable-pip-version-check -r "$HACK_DIR/requirements-linters.txt"
  touch "$LINTERS_VENV/.complete"
}

prepare_go_builds() {
  require_go
  require_disk "$LPO_CACHE"
  export GOTOOLCHAIN=local GOFLAGS=-mod=mod
  mkdir -p "$LPO_CACHE/build"
}

build_core() {
  core_ready && return 0
  prepare_go_builds
  local start=$SECONDS
  build_etcd
  go_install age "$AGE_BIN" "filippo.io/age/cmd/...@$AGE_VERSION"
  build_kubernetes
  log "the core tools (etcd, Kubernetes, age) built in $((SECONDS - start))s, cached in $LPO_CACHE/bin"
}

build_rest() {
  rest_ready && return 0
  prepare_go_builds
  local start=$SECONDS
  build_helm
  build_oldest_apiserver
  build_health_tool kstatus "$KSTATUS_BIN"
  build_health_tool flux-health "$FLUX_HEALTH_BIN"
  build_health_tool argocd-health "$ARGOCD_HEALTH_BIN"
  go_install kube-score "$KUBE_SCORE_BIN" "github.com/zegl/kube-score/cmd/kube-score@$KUBE_SCORE_VERSION"
  go_install kubeconform "$KUBECONFORM_BIN" "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
  go_install promtool "$PROMTOOL_BIN" "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION" remove_all_sd
  install_linters_venv
  log "the other tools (helm, the oldest kube-apiserver, linters, health checks, promtool) built in $((SECONDS - start))s, cached in $LPO_CACHE/bin"
}

build_tools() {
  build_core
  build_rest
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  case "${1:-build} ${2:-all}" in
    "build all") build_tools ;;
    "build core") build_core ;;
    "build rest") build_rest ;;
    *) die "usage: $0 build [all|core|rest]" ;;
  esac
fi
