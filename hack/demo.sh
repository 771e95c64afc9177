#!/usr/bin/env bash
# `make demo`: the environment, the CRD, the operator (`helm install`ed as a
# Pod on the environment's node; a background process when the environment
# runs without one, LPO_NODE=0), examples/ applied, every LoginProfile Ready,
# and the Kubernetes view beside the IAM view. `make demo-stop` stops it all.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DEVENV="$ROOT/target/devenv"
PIDFILE="$DEVENV/operator.pid"
say() { printf '\n==> %s\n' "$*"; }

stop_operator() {
  if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    kill "$(cat "$PIDFILE")"
    echo "stopped the demo operator (pid $(cat "$PIDFILE"))"
  fi
  rm -f "$PIDFILE"
}

case "${1:-start}" in
  stop)
    stop_operator
    hack/devenv.sh down || true
    exit 0
    ;;
  start) ;;
  *) echo "usage: hack/demo.sh start|stop" >&2; exit 2 ;;
esac

say "Starting the environment (the first run builds Kubernetes, etcd and helm: 10-20 minutes)"
hack/devenv.sh up
# shellcheck disable=SC1091
source "$DEVENV/env"

if [[ -n "${LPO_NODE:-}" ]]; then
  say "Building the operator's image (the static binary the Dockerfile builds; minutes the first time)"
  hack/image-binary.sh
  hack/devenv.sh load-image
else
  say "Building the operator"
  cargo build --quiet
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/loginprofile-operator"
fi

say "Installing the CRDs (LoginProfile, IAMAccount)"
kubectl apply --server-side -f crds/loginprofile-operator.yaml
kubectl wait --for=condition=Established --timeout=60s \
  crd/loginprofiles.iam.loginprofile.dev crd/iamaccounts.iam.loginprofile.dev

say "Creating the IAM users the examples name (in the emulator)"
profiles=$(kubectl apply --dry-run=client -f examples/ -o json | jq -c '(.items // [.])[] | select(.kind == "LoginProfile")')
users=$(jq -r '.spec.userName // .metadata.name' <<<"$profiles")
for user in $users; do
  aws iam get-user --user-name "$user" >/dev/null 2>&1 || aws iam create-user --user-name "$user" >/dev/null
  echo "IAM user $user"
done

stop_operator
if [[ -n "${LPO_NODE:-}" ]]; then
  say "helm install: the operator as a Pod on node $LPO_NODE, from the image just built"
  # The emulator at the node IP (hack/node.sh); a real cluster gives the Pod
  # its AWS identity through IRSA or Pod Identity instead (docs/install.md).
  helm upgrade --install loginprofile-operator charts/loginprofile-operator \
    --namespace loginprofile-system --create-namespace \
    --set image.repository=localhost/loginprofile-operator --set image.tag=dev --set image.pullPolicy=Never \
    --set defaultAccount.create=false \
    --set "extraEnv[0].name=AWS_ENDPOINT_URL" --set "extraEnv[0].value=$LPO_NODE_IAM_ENDPOINT" \
    --set "extraEnv[1].name=AWS_ACCESS_KEY_ID" --set "extraEnv[1].value=$AWS_ACCESS_KEY_ID" \
    --set "extraEnv[2].name=AWS_SECRET_ACCESS_KEY" --set "extraEnv[2].value=$AWS_SECRET_ACCESS_KEY" \
    --wait --timeout 120s
  kubectl get pods -n loginprofile-system -o wide
  LOGS_HINT="kubectl logs -n loginprofile-system deploy/loginprofile-operator -f"
else
  say "Starting the operator (logs: target/devenv/logs/operator.log)"
  kubectl create namespace loginprofile-system --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  "$BIN" run --operator-namespace loginprofile-system --http-addr 127.0.0.1:0 >"$DEVENV/logs/operator.log" 2>&1 &
  echo $! >"$PIDFILE"
  LOGS_HINT="tail -f target/devenv/logs/operator.log"
fi

say "Applying examples/ (the IAMAccount a cluster admin writes, then team-a's LoginProfiles)"
kubectl apply -f examples/default-account.yaml
kubectl wait --for=condition=Ready --timeout=60s iamaccount/default
kubectl apply -f examples/

say "Waiting until every LoginProfile is Ready"
jq -r '"-n \(.metadata.namespace) loginprofile/\(.metadata.name)"' <<<"$profiles" | while read -r ns_flag ns name; do
  kubectl wait "$ns_flag" "$ns" "$name" --for=condition=Ready --timeout=120s
done

say "Kubernetes: kubectl get iamaccounts; kubectl get loginprofiles -A"
kubectl get iamaccounts
kubectl get loginprofiles -A

say "IAM: aws iam get-login-profile"
for user in $users; do
  aws iam get-login-profile --user-name "$user" --output table
done

cat <<TEXT

Look around:
  source target/devenv/env            # kubectl, helm and aws now talk to the demo
  kubectl describe loginprofile -n team-a alice
  kubectl describe iamaccount default              # who may set which password, in which AWS account
  kubectl get events -n team-a
  kubectl edit secret -n team-a bob-console-password   # rotate: watch Ready's reason turn Updated
  aws iam get-login-profile --user-name alice
  $LOGS_HINT
Stop:
  make demo-stop
TEXT
