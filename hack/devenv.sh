#!/usr/bin/env bash
# The local environment the operator is developed and tested against: etcd,
# kube-apiserver and kube-controller-manager (TLS, RBAC, ServiceAccount token
# signing) plus the IAM emulator (moto, corrected by hack/moto_server.py), all
# on loopback, on free ports; and a node (hack/node.sh: containerd, kubelet,
# kube-proxy in a network namespace of its own, kube-scheduler), which
# LPO_NODE=0 leaves out.
#
#   hack/devenv.sh up       build what is missing (cached), start everything
#   hack/devenv.sh down     stop exactly what `up` started; keep the cache
#   hack/devenv.sh status   what runs, where, since when
#   hack/devenv.sh load-image [BINARY]   the operator's image from the static binary, into the node
#   hack/devenv.sh leftovers   after `down`: fails, naming it, if anything of the node is left
#   hack/devenv.sh restart-apiserver | compact-etcd   faults for tests/disruption.rs
#   hack/devenv.sh install-emulator   only the emulator's venv (make test, beside its builds)
#
# State lives in target/devenv/: kubeconfig, env (source it), pki/, logs/, state.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=hack/tools.sh
source "$ROOT/hack/tools.sh"

DEVENV="$ROOT/target/devenv"
STATE="$DEVENV/state"
PKI="$DEVENV/pki"
LOGS="$DEVENV/logs"
VENV="$DEVENV/venv"
REQUIREMENTS="$ROOT/hack/requirements-devenv.txt"
STARTED_PIDS=()
# shellcheck source=hack/node.sh
source "$ROOT/hack/node.sh"

# --- state ------------------------------------------------------------------

state_get() { [[ -f "$STATE" ]] && sed -n "s/^$1=//p" "$STATE" | tail -n 1; }
state_get_all() { [[ -f "$STATE" ]] && sed -n "s/^$1=//p" "$STATE"; }

CONTROL_PLANE=(etcd kube-apiserver kube-controller-manager moto)

components() {
  echo "${CONTROL_PLANE[@]}"
  if node_wanted; then echo "${NODE_COMPONENTS[@]}"; fi
}

running_pids() {
  local name pid
  for name in $(components); do
    pid=$(state_get "${name}_pid")
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$name=$pid"
  done
  return 0
}

is_up() { [[ -f "$STATE" ]] && [[ $(running_pids | wc -l) -eq $(components | wc -w) ]]; }

# --- prerequisites -----------------------------------------------------------

require_python() {
  command -v python3 >/dev/null 2>&1 || die "python3 is not installed. Install Python 3.9 or newer with the venv module (Debian: apt-get install python3 python3-venv) and run again."
  python3 -c 'import sys, venv; sys.exit(sys.version_info < (3, 9))' 2>/dev/null \
    || die "python3 $(python3 -V 2>&1) lacks the venv module or is older than 3.9. Install python3-venv (Debian) or a newer Python and run again."
}

require_command() {
  command -v "$1" >/dev/null 2>&1 || die "$1 is not installed; $2"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()' \
    || die "could not find a free loopback port (is the loopback interface up?)"
}

# --- the pieces ----------------------------------------------------------------

install_emulator() {
  local stamp="$VENV/.requirements"
  if [[ -x "$VENV/bin/python" && -f "$stamp" ]] && cmp -s "$stamp" "$REQUIREMENTS"; then
    return 0
  fi
  log "installing the IAM emulator and the AWS CLI into $VENV (pinned in $(basename "$REQUIREMENTS"))"
  rm -rf "$VENV"
  python3 -m venv "$VENV" || die "python3 -m venv failed; install python3-venv and run again"
  run_with_heartbeat "pip install" "$DEVENV/pip.log" \
    "$VENV/bin/pip" install --disable-pip-version-check -r "$REQUIREMENTS"
  cp "$REQUIREMENTS" "$stamp"
}

make_pki() {
  # The serving certificate also names the kubernetes Service's ClusterIP and
  # the node IP (Pods reach the API server there): older PKI lacks them.
  [[ -f "$PKI/admin.crt" ]] && grep -q "IP:$NODE_IP" "$PKI/san.cnf" 2>/dev/null && return 0
  rm -rf "$PKI"
  log "creating a CA, serving and client certificates, and ServiceAccount signing keys in $PKI"
  mkdir -p "$PKI"
  (
    cd "$PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=loginprofile-devenv-ca" \
      -keyout ca.key -out ca.crt 2>/dev/null
    cat >san.cnf <<EOF
subjectAltName = IP:127.0.0.1, IP:10.96.0.1, IP:$NODE_IP, DNS:localhost, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc
extendedKeyUsage = serverAuth, clientAuth
EOF
    cat >client.cnf <<'EOF'
extendedKeyUsage = clientAuth
EOF
    issue() { # name subject extfile
      openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
        -extfile "$3" -out "$1.crt" 2>/dev/null
      rm -f "$1.csr"
    }
    issue serving "/CN=kube-apiserver" san.cnf
    issue etcd-client "/CN=kube-apiserver-etcd-client" client.cnf
    issue admin "/O=system:masters/CN=devenv-admin" client.cnf
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
}

write_kubeconfig() { # file server
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: devenv
  cluster:
    server: $2
    certificate-authority: $PKI/ca.crt
users:
- name: devenv-admin
  user:
    client-certificate: $PKI/admin.crt
    client-key: $PKI/admin.key
contexts:
- name: devenv
  context: {cluster: devenv, user: devenv-admin}
current-context: devenv
EOF
}

start() { # name logfile cmd...: starts a process in its own session, records its pid
  local name="$1" logfile="$2"; shift 2
  setsid "$@" >"$logfile" 2>&1 </dev/null &
  local pid=$!
  STARTED_PIDS+=("$pid")
  echo "${name}_pid=$pid" >>"$STATE"
}

wait_for() { # what seconds cmd...: polls cmd until it succeeds
  local what="$1" deadline=$((SECONDS + $2)); shift 2
  until "$@" >/dev/null 2>&1; do
    if (( SECONDS >= deadline )); then
      die "$what did not become ready within $(( $2 ))s; see $LOGS/"
    fi
    sleep 0.5
  done
}

cleanup_failed_start() {
  node_down 2>/dev/null || true
  local pid
  for pid in "${STARTED_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${STARTED_PIDS[@]}"; do
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -f "$STATE"
}

start_apiserver() { # api_port etcd_port
  local api_port="$1" etcd_port="$2" node_flags advertise=127.0.0.1
  echo "api_port=$api_port" >>"$STATE"
  mapfile -t node_flags < <(node_apiserver_flags)
  # With a node, the kubernetes Service points at the node IP (hack/node.sh).
  if node_wanted; then advertise="$NODE_IP"; fi
  start kube-apiserver "$LOGS/kube-apiserver.log" "$KUBE_BIN/kube-apiserver" \
    --bind-address 127.0.0.1 --advertise-address "$advertise" --secure-port "$api_port" \
    --etcd-servers "https://127.0.0.1:$etcd_port" \
    --etcd-cafile "$PKI/ca.crt" --etcd-certfile "$PKI/etcd-client.crt" --etcd-keyfile "$PKI/etcd-client.key" \
    --tls-cert-file "$PKI/serving.crt" --tls-private-key-file "$PKI/serving.key" \
    --client-ca-file "$PKI/ca.crt" \
    --authorization-mode RBAC \
    --service-account-issuer "https://kubernetes.default.svc" \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --api-audiences "https://kubernetes.default.svc" \
    --service-cluster-ip-range 10.96.0.0/16 \
    --cert-dir "$DEVENV/apiserver-certs" \
    --enable-priority-and-fairness=false \
    --audit-policy-file "$ROOT/hack/audit-policy.yaml" --audit-log-path "$LOGS/audit.log" \
    --audit-log-format json --audit-log-maxsize 1000 --audit-log-maxbackup 1 \
    "${node_flags[@]}" \
    --v 1
}

etcd_api() { # path json: one call of etcd's JSON gateway, with the client certificate
  curl -sf --cacert "$PKI/ca.crt" --cert "$PKI/etcd-client.crt" --key "$PKI/etcd-client.key" \
    -X POST -d "$2" "$(state_get etcd)$1"
}

# For fault tests: kube-apiserver stops (SIGTERM, as on a control-plane
# upgrade) and starts again on the same port, with the same flags.
cmd_restart_apiserver() {
  is_up || die "the environment is not up"
  local pid; pid=$(state_get kube-apiserver_pid)
  kill "$pid"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  start_apiserver "$(state_get api_port)" "$(state_get etcd | sed 's/.*://')"
  wait_for "kube-apiserver" 120 curl -sf --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "$(state_get server)/readyz"
  log "kube-apiserver restarted (pid $(state_get kube-apiserver_pid))"
}

# For fault tests: compacts etcd's history up to now, so a watch resumed from
# an older resourceVersion is answered 410 Gone and must list again.
cmd_compact_etcd() {
  is_up || die "the environment is not up"
  local revision
  revision=$(etcd_api /v3/kv/range '{"key": "AA=="}' | jq -r '.header.revision')
  etcd_api /v3/kv/compaction "{\"revision\": \"$revision\", \"physical\": true}" >/dev/null
  log "etcd compacted at revision $revision"
}

# --- commands ---------------------------------------------------------------------

cmd_up() {
  if is_up; then
    log "already running (since $(state_get started)); nothing to do. 'make devenv-status' shows it."
    return 0
  fi
  if [[ -f "$STATE" ]]; then
    log "a previous environment is partly running; stopping what is left of it first"
    cmd_down
  fi
  local start_time=$SECONDS
  require_python
  require_command openssl "install it (Debian: apt-get install openssl) and run again."
  require_command jq "install it (Debian: apt-get install jq) and run again."
  require_command curl "install it (Debian: apt-get install curl) and run again."
  if node_wanted; then require_node_support; fi
  mkdir -p "$DEVENV" "$LOGS"
  require_disk "$DEVENV"
  # make test starts the environment once the core tools are built and
  # builds the rest beside the first tests (LPO_DEVENV_TOOLS=core).
  if [[ "${LPO_DEVENV_TOOLS:-all}" == core ]]; then
    core_ready || build_core
  else
    tools_ready || build_tools
  fi
  install_emulator
  make_pki

  local etcd_port etcd_peer_port api_port kcm_port moto_port
  etcd_port=$(free_port); etcd_peer_port=$(free_port); api_port=$(free_port)
  kcm_port=$(free_port); moto_port=$(free_port)
  local server="https://127.0.0.1:$api_port"
  write_kubeconfig "$DEVENV/kubeconfig" "$server"

  trap 'log "start-up failed; stopping what was started"; cleanup_failed_start' ERR
  trap 'cleanup_failed_start; exit 1' INT TERM
  rm -rf "$DEVENV/etcd-data"
  rm -f "$LOGS"/audit*.log # a fresh cluster gets a fresh audit log
  {
    echo "started=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "server=$server"
    echo "etcd=https://127.0.0.1:$etcd_port"
    echo "iam=http://127.0.0.1:$moto_port"
  } >"$STATE"

  start etcd "$LOGS/etcd.log" "$ETCD_BIN/etcd" \
    --name devenv --data-dir "$DEVENV/etcd-data" \
    --listen-client-urls "https://127.0.0.1:$etcd_port" --advertise-client-urls "https://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster "devenv=http://127.0.0.1:$etcd_peer_port" \
    --cert-file "$PKI/serving.crt" --key-file "$PKI/serving.key" \
    --client-cert-auth --trusted-ca-file "$PKI/ca.crt" \
    --unsafe-no-fsync --log-level warn

  start moto "$LOGS/moto.log" "$VENV/bin/python" "$ROOT/hack/moto_server.py" "$moto_port"

  start_apiserver "$api_port" "$etcd_port"

  wait_for "etcd" 60 curl -sf --cacert "$PKI/ca.crt" --cert "$PKI/etcd-client.crt" --key "$PKI/etcd-client.key" \
    "https://127.0.0.1:$etcd_port/health"
  wait_for "the IAM emulator" 60 curl -sf "http://127.0.0.1:$moto_port/_lpo/health"
  wait_for "kube-apiserver" 120 curl -sf --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "$server/readyz"

  # The namespace controller finalizes deleted namespaces, the garbage
  # collector follows ownerReferences, and the ClusterRole aggregator folds
  # the chart's LoginProfile rules into `edit`/`view`: tests rely on all
  # three, as users do. The node's Deployments need the deployment and
  # ReplicaSet controllers, its Pods the kube-root-ca.crt ConfigMap, and the
  # node lifecycle controller lifts the not-ready taint.
  start kube-controller-manager "$LOGS/kube-controller-manager.log" "$KUBE_BIN/kube-controller-manager" \
    --kubeconfig "$DEVENV/kubeconfig" --authentication-kubeconfig "$DEVENV/kubeconfig" \
    --authorization-kubeconfig "$DEVENV/kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$kcm_port" --leader-elect=false \
    --controllers namespace-controller,garbage-collector-controller,serviceaccount-controller,clusterrole-aggregation-controller,deployment-controller,replicaset-controller,root-ca-certificate-publisher-controller,node-lifecycle-controller,endpointslice-controller \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --cert-dir "$DEVENV/kcm-certs"
  wait_for "kube-controller-manager" 60 curl -sfk "https://127.0.0.1:$kcm_port/healthz"
  node_up "$api_port" "$moto_port"
  # The operator's own identity: an IAM user with only the shipped policies
  # (plain moto authorizes nothing: the tests' key there).
  local operator_identity="export LPO_OPERATOR_AWS_ACCESS_KEY_ID=testing
export LPO_OPERATOR_AWS_SECRET_ACCESS_KEY=testing"
  [[ "${LPO_MOTO_UNPATCHED:-}" == 1 ]] || operator_identity=$(AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port" AWS_DEFAULT_REGION=us-east-1 \
    AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
    "$VENV/bin/python" "$ROOT/hack/operator_identity.py" create loginprofile-operator)

  cat >"$DEVENV/env" <<EOF
# Generated by hack/devenv.sh up; source it: . target/devenv/env
export KUBECONFIG="$DEVENV/kubeconfig"
export AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port"
export LPO_AUDIT_LOG="$LOGS/audit.log"
export LPO_NODE="$(node_wanted && echo "$NODE_NAME")"
export LPO_NODE_IAM_ENDPOINT="http://$NODE_IP:$moto_port"
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
$operator_identity
export LPO_LINTERS_VENV="$LINTERS_VENV"
# For tests/oldest_kubernetes.rs: a second API server (the oldest supported
# Kubernetes) on this etcd and PKI, under a key prefix of its own.
export LPO_OLDEST_KUBE_APISERVER="$OLDEST_KUBE_BIN/kube-apiserver"
export LPO_ETCD="https://127.0.0.1:$etcd_port"
export LPO_PKI="$PKI"
export PATH="$KUBE_BIN:$HELM_BIN:$KSTATUS_BIN:$FLUX_HEALTH_BIN:$ARGOCD_HEALTH_BIN:$KUBE_SCORE_BIN:$KUBECONFORM_BIN:$PROMTOOL_BIN:$AGE_BIN:$VENV/bin:$LINTERS_VENV/bin:\$PATH"
EOF
  trap - ERR INT TERM
  log "up in $((SECONDS - start_time))s: kube-apiserver $server, IAM emulator http://127.0.0.1:$moto_port$(node_wanted && echo ", node $NODE_NAME ($NODE_IP, in network namespace $NODE_NETNS)")"
  log "use it: . target/devenv/env && kubectl get ns && aws iam list-users"
}

cmd_down() {
  if [[ ! -f "$STATE" ]]; then
    log "not running; nothing to stop"
    return 0
  fi
  node_down
  local pid name
  local pids=()
  for name in kube-controller-manager kube-apiserver moto etcd; do
    pid=$(state_get "${name}_pid")
    [[ -n "$pid" ]] || continue
    if kill "$pid" 2>/dev/null; then
      log "stopping $name (pid $pid)"
      pids+=("$pid")
    fi
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -f "$STATE" "$DEVENV/env"
  rm -rf "$DEVENV/etcd-data"
  log "stopped; the tool cache in $LPO_CACHE/bin stays"
}

cmd_status() {
  if [[ ! -f "$STATE" ]]; then
    echo "devenv: down (run 'make devenv-up')"
    return 1
  fi
  echo "devenv: started $(state_get started)"
  echo "  kube-apiserver  $(state_get server)"
  echo "  etcd            $(state_get etcd)"
  echo "  IAM emulator    $(state_get iam)"
  [[ -n "$(state_get node_netns)" ]] && echo "  node            $NODE_NAME, $NODE_IP in network namespace $(state_get node_netns)"
  local name pid
  for name in $(components); do
    pid=$(state_get "${name}_pid")
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
      printf '  %-24s running, pid %s\n' "$name" "$pid"
    else
      printf '  %-24s NOT running (see %s)\n' "$name" "$LOGS/$name.log"
    fi
  done
  echo "  kubeconfig      $DEVENV/kubeconfig; env: . $DEVENV/env"
  is_up || return 1
}

case "${1:-}" in
  up) cmd_up ;;
  # The emulator's venv alone (make test installs it beside the builds).
  install-emulator) require_python; mkdir -p "$DEVENV" "$LOGS"; install_emulator ;;
  down) cmd_down ;;
  status) cmd_status ;;
  restart-apiserver) cmd_restart_apiserver ;;
  compact-etcd) cmd_compact_etcd ;;
  load-image) cmd_load_image "${2:-}" ;;
  leftovers) cmd_leftovers ;;
  *) die "usage: hack/devenv.sh up|down|status|load-image|leftovers|restart-apiserver|compact-etcd|install-emulator" ;;
esac
