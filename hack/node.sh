# shellcheck shell=bash
# The dev environment's node: containerd + runc, a CNI bridge, kubelet and
# kube-proxy, all inside one network namespace that this script creates, plus
# kube-scheduler on the host. Sourced by hack/devenv.sh (it uses its start,
# wait_for, state_get and paths); docs/development.md, "The node", explains it.
#
# The network rule: nothing may use an address outside loopback and this
# namespace. So the node IP, the bridge, Pod IPs and ClusterIPs exist only in
# the namespace, and the two sides meet through unix sockets
# (hack/netns-bridge.py):
#   in the namespace  NODE_IP:<api port>   -> api.sock  -> host 127.0.0.1:<api port>
#                     NODE_IP:<iam port>   -> iam.sock  -> host 127.0.0.1:<iam port>
#   the API server's egress to the kubelet (logs, exec): HTTP CONNECT over
#                     egress.sock, dialled from inside the namespace.
# The kubernetes Service (10.96.0.1:443) points at NODE_IP:<api port>, so a
# Pod's in-cluster configuration reaches the host's API server.

NODE_NAME=lpo-node
NODE_IP=10.77.0.2
NODE_POD_SUBNET=10.88.0.0/24
PAUSE_IMAGE=localhost/lpo-pause:1
OPERATOR_IMAGE=localhost/loginprofile-operator:dev
NODE_DIR="$DEVENV/node"
# Unix socket paths are limited to 108 bytes; a checkout's path is not. The
# runtime directory is short and named after this checkout, so two
# checkouts never share one (nor a network namespace).
NODE_KEY=$(printf '%s' "$DEVENV" | sha256sum | cut -c1-8)
NODE_RUN="/run/lpo-node-$NODE_KEY"
NODE_NETNS="lpo-node-$NODE_KEY"
CONTAINERD_SOCK="$NODE_RUN/containerd.sock"
NODE_COMPONENTS=(netns-bridge-host netns-bridge-node containerd kubelet kube-proxy kube-scheduler)
# Fixed paths outside our directories: the kubelet's device plugin socket
# directory, its container log links, containerd's shim sockets, the CNI
# result cache, and (below) containerd's parent cgroup in each hierarchy.
NODE_FIXED_PATHS=(/var/lib/kubelet /var/log/containers /run/containerd /var/lib/cni /run/netns)
OPERATOR_BINARY="${CARGO_TARGET_DIR:-$ROOT/target}/x86_64-unknown-linux-musl/release/loginprofile-operator"

node_wanted() { [[ "${LPO_NODE:-1}" != 0 ]]; }

in_node() { nsenter --net="/run/netns/$NODE_NETNS" -- "$@"; }

ctr_node() { ctr --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }

require_node_support() {
  [[ $(id -u) -eq 0 ]] || die "the node needs root (network namespaces, containerd, mounts). Run as root, or start without it: LPO_NODE=0 make devenv-up (tests/node.rs then fails, saying so)."
  local command
  for command in containerd containerd-shim-runc-v2 runc ctr iptables nsenter ip; do
    command -v "$command" >/dev/null 2>&1 || die "$command is missing: run 'make deps' (hack/deps.sh installs containerd, runc, containernetworking-plugins and iptables)"
  done
  [[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback ]] \
    || die "the CNI plugins are missing from /usr/lib/cni: run 'make deps'"
}

node_write_configs() {
  local api_port="$1"
  mkdir -p "$NODE_DIR/cni/net.d" "$NODE_DIR/kubelet" "$NODE_DIR/pod-logs" "$NODE_DIR/volume-plugins" "$NODE_RUN"
  cat >"$NODE_DIR/containerd.toml" <<EOF
version = 2
root = "$NODE_DIR/containerd"
state = "$NODE_RUN/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$CONTAINERD_SOCK"
[plugins."io.containerd.internal.v1.opt"]
  path = "$NODE_DIR/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Without CAP_SYS_RESOURCE every sandbox fails ("can't get final child's PID from pipe: EOF").
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$NODE_RUN/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE_DIR/cni/net.d"
EOF
  cat >"$NODE_DIR/cni/net.d/10-lpo-node.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "lpo-node",
  "plugins": [{
    "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
    "ipam": {"type": "host-local", "ranges": [[{"subnet": "$NODE_POD_SUBNET"}]],
             "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$NODE_DIR/cni/ipam"}
  }]
}
EOF
  # cgroup v1 hosts: failCgroupV1 false, cgroupfs, no QoS cgroups. The
  # eviction and image GC thresholds are out of reach: the host's disk is
  # shared, and a Pod evicted for another checkout's build would fail a test.
  cat >"$NODE_DIR/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: ["none"]
failSwapOn: false
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
podLogsDir: $NODE_DIR/pod-logs
volumePluginDir: $NODE_DIR/volume-plugins
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
EOF
  cat >"$NODE_DIR/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $NODE_DIR/kubeconfig}
mode: iptables
hostnameOverride: $NODE_NAME
clusterCIDR: $NODE_POD_SUBNET
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# The namespace's conntrack table is the host kernel's: leave its limits alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
  # Inside the namespace the API server is at its own loopback port (the bridge).
  write_kubeconfig "$NODE_DIR/kubeconfig" "https://127.0.0.1:$api_port"
}

# The API server's side of the node: egress to the kubelet through the
# namespace, and a client certificate the kubelet accepts. Flags for
# start_apiserver.
node_apiserver_flags() {
  node_wanted || return 0
  cat >"$DEVENV/egress-selector.yaml" <<EOF
apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
- name: cluster
  connection:
    proxyProtocol: HTTPConnect
    transport:
      uds: {udsName: $NODE_RUN/egress.sock}
EOF
  printf '%s\n' --egress-selector-config-file "$DEVENV/egress-selector.yaml" \
    --kubelet-client-certificate "$PKI/admin.crt" --kubelet-client-key "$PKI/admin.key" \
    --kubelet-preferred-address-types InternalIP
}

node_images() { # writes the pause and operator images and imports them
  mkdir -p "$NODE_DIR/images"
  musl-gcc -static -O2 -o "$NODE_DIR/images/pause" "$ROOT/hack/pause.c"
  python3 "$ROOT/hack/oci-image.py" --pause "$NODE_DIR/images/pause" "$NODE_DIR/images/pause.tar" "$PAUSE_IMAGE" >/dev/null
  ctr_node images import "$NODE_DIR/images/pause.tar" >/dev/null
  cmd_load_image
}

# The operator's image from the static binary (`make image-binary`), imported
# into the node; run again after a rebuild (tests/node.rs does).
cmd_load_image() {
  local binary="${1:-$OPERATOR_BINARY}"
  [[ -S "$CONTAINERD_SOCK" ]] || die "the node is not up ('make devenv-up')"
  if [[ ! -x "$binary" ]]; then
    log "no static binary at $binary yet: 'make image-binary' builds it; the node runs without the operator's image"
    return 0
  fi
  python3 "$ROOT/hack/oci-image.py" "$binary" "$NODE_DIR/images/operator.tar" "$OPERATOR_IMAGE" >/dev/null
  ctr_node images import "$NODE_DIR/images/operator.tar" >/dev/null
  # Also by digest, as a pull from a registry records it: an install that
  # pins image.digest (docs/install.md) finds the image without a registry.
  local digest
  digest=$(python3 -c 'import json, sys, tarfile
with tarfile.open(sys.argv[1]) as archive: print(json.load(archive.extractfile("index.json"))["manifests"][0]["digest"])' \
    "$NODE_DIR/images/operator.tar")
  ctr_node images tag --force "$OPERATOR_IMAGE" "${OPERATOR_IMAGE%:*}@$digest" >/dev/null
  log "imported $OPERATOR_IMAGE (${OPERATOR_IMAGE%:*}@$digest) into the node"
}

node_up() { # api_port moto_port
  node_wanted || return 0
  local api_port="$1" moto_port="$2"
  local scheduler_port; scheduler_port=$(free_port)
  node_write_configs "$api_port"

  # Paths the kubelet and containerd use whatever they are told; what did
  # not exist before is ours and goes on `down`.
  local path hierarchy
  for path in "${NODE_FIXED_PATHS[@]}"; do
    [[ -e "$path" ]] || echo "node_created=$path" >>"$STATE"
  done
  for hierarchy in /sys/fs/cgroup/*/; do
    [[ -e "${hierarchy}k8s.io" ]] || echo "node_created=${hierarchy}k8s.io" >>"$STATE"
  done
  # The name is this checkout's: one left by a crash is ours to replace.
  ip netns delete "$NODE_NETNS" 2>/dev/null || true
  ip netns add "$NODE_NETNS"
  echo "node_netns=$NODE_NETNS" >>"$STATE"
  in_node ip link set lo up
  # The node IP sits on one end of a veth pair that never leaves the namespace.
  in_node ip link add lpo-node0 type veth peer name lpo-node1
  in_node ip addr add "$NODE_IP/24" dev lpo-node0
  in_node ip link set lpo-node0 up
  in_node ip link set lpo-node1 up

  start netns-bridge-host "$LOGS/netns-bridge-host.log" python3 "$ROOT/hack/netns-bridge.py" \
    --unix-to-tcp "$NODE_RUN/api.sock=127.0.0.1:$api_port" \
    --unix-to-tcp "$NODE_RUN/iam.sock=127.0.0.1:$moto_port"
  start netns-bridge-node "$LOGS/netns-bridge-node.log" nsenter --net="/run/netns/$NODE_NETNS" -- \
    python3 "$ROOT/hack/netns-bridge.py" \
    --tcp-to-unix "0.0.0.0:$api_port=$NODE_RUN/api.sock" \
    --tcp-to-unix "0.0.0.0:$moto_port=$NODE_RUN/iam.sock" \
    --http-connect "$NODE_RUN/egress.sock"
  start containerd "$LOGS/containerd.log" nsenter --net="/run/netns/$NODE_NETNS" -- \
    containerd --config "$NODE_DIR/containerd.toml" --log-level warn
  wait_for "containerd" 60 ctr_node version

  start kubelet "$LOGS/kubelet.log" nsenter --net="/run/netns/$NODE_NETNS" -- \
    "$KUBE_BIN/kubelet" --config "$NODE_DIR/kubelet.yaml" --kubeconfig "$NODE_DIR/kubeconfig" \
    --root-dir "$NODE_DIR/kubelet" --cert-dir "$NODE_DIR/kubelet/pki" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --v 1
  start kube-proxy "$LOGS/kube-proxy.log" nsenter --net="/run/netns/$NODE_NETNS" -- \
    "$KUBE_BIN/kube-proxy" --config "$NODE_DIR/kube-proxy.yaml" --v 1
  start kube-scheduler "$LOGS/kube-scheduler.log" "$KUBE_BIN/kube-scheduler" \
    --kubeconfig "$DEVENV/kubeconfig" --authentication-kubeconfig "$DEVENV/kubeconfig" \
    --authorization-kubeconfig "$DEVENV/kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$scheduler_port" --leader-elect=false

  wait_for "kube-scheduler" 60 curl -sfk "https://127.0.0.1:$scheduler_port/healthz"
  wait_for "the node to be Ready" 120 node_ready
  # Only now: containerd's CRI plugin learns of images from events it
  # subscribes to when it starts serving, which a Ready node proves.
  node_images
}

node_ready() {
  [[ $("$KUBE_BIN/kubectl" --kubeconfig "$DEVENV/kubeconfig" get node "$NODE_NAME" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}

# Pods first, through the kubelet while it still runs (it stops their
# sandboxes: CNI teardown, network namespaces removed); then the processes;
# then whatever a crash left: containers, shims, mounts, namespaces.
node_down() {
  local netns; netns=$(state_get node_netns)
  local kubectl=("$KUBE_BIN/kubectl" --kubeconfig "$DEVENV/kubeconfig" --request-timeout 5s)
  if [[ -n "$(state_get kubelet_pid)" ]] && kill -0 "$(state_get kubelet_pid)" 2>/dev/null \
      && "${kubectl[@]}" get node "$NODE_NAME" >/dev/null 2>&1; then
    log "deleting the node's Pods"
    "${kubectl[@]}" cordon "$NODE_NAME" >/dev/null 2>&1 || true
    "${kubectl[@]}" delete pods --all-namespaces --all --grace-period 1 --wait=false >/dev/null 2>&1 || true
    for _ in $(seq 60); do
      [[ -z "$(ctr_node tasks list -q 2>/dev/null)" ]] && break
      sleep 0.5
    done
  fi
  local name pid pids=()
  for name in kube-scheduler kube-proxy kubelet; do
    pid=$(state_get "${name}_pid")
    if [[ -n "$pid" ]] && kill "$pid" 2>/dev/null; then pids+=("$pid"); fi
  done
  wait_gone "${pids[@]}"
  if [[ -S "$CONTAINERD_SOCK" ]]; then
    local sandbox_netns id
    sandbox_netns=$(node_sandbox_netns)
    for id in $(ctr_node tasks list -q 2>/dev/null); do
      ctr_node tasks kill --signal SIGKILL "$id" >/dev/null 2>&1 || true
    done
    for id in $(ctr_node containers list -q 2>/dev/null); do
      ctr_node tasks delete --force "$id" >/dev/null 2>&1 || true
      ctr_node containers delete "$id" >/dev/null 2>&1 || true
    done
    local path
    for path in $sandbox_netns; do umount "$path" 2>/dev/null || true; rm -f "$path"; done
  fi
  pids=()
  for name in containerd netns-bridge-node netns-bridge-host; do
    pid=$(state_get "${name}_pid")
    if [[ -n "$pid" ]] && kill "$pid" 2>/dev/null; then pids+=("$pid"); fi
  done
  wait_gone "${pids[@]}"
  # Shims outlive containerd by design; ours name our socket.
  pkill -9 -f -- "-address $CONTAINERD_SOCK" 2>/dev/null || true
  # Mounts under our directories, deepest first.
  awk -v a="$NODE_DIR/" -v b="$NODE_RUN/" 'index($5, a) == 1 || index($5, b) == 1 {print $5}' /proc/self/mountinfo \
    | sort -r | while read -r mount; do umount -l "$mount" 2>/dev/null || true; done
  ip netns delete "${netns:-$NODE_NETNS}" 2>/dev/null || true
  # A node whose state file was since overwritten (a crashed run, then a new
  # one) leaves its namespace mounted under another name: one devenv runs
  # per machine, so every lpo-node namespace left is ours to remove.
  local stale
  for stale in $(ip netns list 2>/dev/null | grep -o '^lpo-node-[0-9a-f]*'); do
    ip netns delete "$stale" 2>/dev/null || true
  done
  # Where those fixed paths were there before us, only our entries go.
  find /var/log/containers -maxdepth 1 -type l -lname "$NODE_DIR/*" -delete 2>/dev/null || true
  rm -f /var/lib/cni/results/lpo-node-* 2>/dev/null || true
  local created
  for created in $(state_get_all node_created); do
    # `ip netns add` makes /run/netns a mount point of its own.
    if [[ "$created" == /run/netns ]]; then umount /run/netns 2>/dev/null || true; fi
    if [[ "$created" == /sys/fs/cgroup/* ]]; then
      # A cgroup goes with rmdir once empty, children first.
      find "$created" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    else
      rm -rf "$created"
    fi
  done
  rm -rf "$NODE_RUN" "$NODE_DIR"
}

# The network namespaces of the node's Pod sandboxes (containerd 1.6 pins
# them under /var/run/netns), read from the containers' specs.
node_sandbox_netns() {
  local id
  for id in $(ctr_node containers list -q 2>/dev/null); do
    ctr_node containers info "$id" 2>/dev/null \
      | jq -r '.Spec.linux.namespaces[]? | select(.type == "network") | .path // empty'
  done | sort -u | grep '^/var/run/netns/\|^/run/netns/' || true
}

wait_gone() {
  local pid
  for pid in "$@"; do
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null || true
  done
}

# What a stopped node must not leave: prints each leftover, fails if any
# (`.ci/run` runs it after `down`).
cmd_leftovers() {
  local found=0 line
  while read -r line; do
    [[ -n "$line" ]] || continue
    echo "left behind: $line"; found=1
  done < <(
    ip netns list 2>/dev/null | grep -F "$NODE_NETNS" | sed 's/^/network namespace /'
    pgrep -af -- "$DEVENV/|$NODE_RUN/" | grep -v pgrep | sed 's/^/process /'
    # Containers: processes in containerd's k8s.io cgroups.
    grep -l ':/k8s.io/' /proc/[0-9]*/cgroup 2>/dev/null | cut -d/ -f3 | sed 's/^/container process /'
    grep -F -e "$NODE_DIR/" -e "$NODE_RUN/" /proc/self/mountinfo | awk '{print "mount " $5}'
    for line in "$NODE_DIR" "$NODE_RUN"; do [[ -e "$line" ]] && echo "path $line"; done
  )
  (( found == 0 )) && log "nothing of the node is left"
  return "$found"
}
