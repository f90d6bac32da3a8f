#!/usr/bin/env bash
# cluster.sh: the real-cluster tier. A control plane (etcd, kube-apiserver,
# kube-scheduler, kube-controller-manager on 127.0.0.1) and two nodes, each a
# containerd + runc + kubelet in a network namespace of its own with private
# /etc, /opt, /var and /run (hack/cluster/node-ns.sh), joined by a switch.
# Each node's CNI conf dir holds a bridge + host-local conflist, the stand-in
# for the cluster's primary network; plexus is installed on top by the user's
# own `kubectl apply -k`.
#
#   hack/cluster.sh build   build what it runs (hack/testbed.sh build, images)
#   hack/cluster.sh up      start it; nodes Ready, images imported
#   hack/cluster.sh down    stop it, leaving no process, mount, cgroup,
#                           netns, link or file outside .cluster
#   hack/cluster.sh status  exit 0 when up
#   hack/cluster.sh install install plexus as a user does: `kubectl apply -k`
#                           of an overlay of deploy/ that only sets the image
#                           (the one `make image` built and `up` imported),
#                           then wait for plexusd and plexus-controller
#   hack/cluster.sh restart-runtime NODE [--stopped-hook CMD]
#                           stop the node's kubelet and containerd (containers
#                           keep running), run CMD, start them again
#   hack/cluster.sh reload  import a rebuilt plexus image (`make image`) into
#                           the running nodes, install it, restart its pods
#
# Admin kubeconfig: .cluster/kubeconfig. PLEXUS_CLUSTER_DIR moves .cluster.
#
# Addresses (TEST-NET only, and only inside namespaces made here):
#   switch/router ns  198.51.100.30/28 on the switch bridge
#   node-N            eth0 198.51.100.(16+N)/28; pods 203.0.113.0/25 (node-1),
#                     203.0.113.128/25 (node-2); 198.51.100.1/32 on lo, the
#                     `kubernetes` Service, relayed to the API server
#   outside host      198.51.100.126/26 on the switch: the macvlan segment
#                     198.51.100.64/26 that tests give their NADs
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
TB=$(realpath -m "${PLEXUS_TESTBED_DIR:-$ROOT/.testbed}")
BIN=$(realpath -m "${PLEXUS_TESTBED_BIN:-$TB/bin}")
CL=$(realpath -m "${PLEXUS_CLUSTER_DIR:-$ROOT/.cluster}")
CP_RUN=$CL/run        # the control plane's state (hack/testbed.sh)
RUN=$CL/nodes/run     # pid files of what this script starts
LOGS=$CL/logs
IMAGES=$CL/images
KUBECONFIG_OUT=$CL/kubeconfig
KUBECTL=("$BIN/kubectl" --kubeconfig="$KUBECONFIG_OUT")

NODES=(node-1 node-2)
NS=plexus-cl # prefix of every network namespace, link name and cgroup made here
SW_NS=$NS-sw
EXT_NS=$NS-ext
SW_IP=198.51.100.30
API_SERVICE_IP=198.51.100.1
CGROUP_CONTROLLERS=(blkio cpu cpuacct cpuset devices freezer memory pids systemd)
RUNC=${RUNC:-/usr/sbin/runc}
READY_TIMEOUT=${READY_TIMEOUT:-120}

export PATH=$BIN:$PATH # containerd finds its shim on PATH

log() { echo "cluster: $*"; }
ON_DIE=
die() {
	echo "cluster: error: $*" >&2
	if [[ -n $ON_DIE ]]; then
		local hook=$ON_DIE
		ON_DIE=
		$hook >&2 || true
	fi
	exit 1
}

# shellcheck source=lib/proc.sh
. "$ROOT/hack/lib/proc.sh"

controlplane() {
	PLEXUS_TESTBED_DIR=$CL PLEXUS_TESTBED_BIN=$BIN PLEXUS_TESTBED_PROFILE=cluster \
		PLEXUS_CLUSTER_NODES="${NODES[*]}" "$ROOT/hack/testbed.sh" "$@"
}

node_index() { # node-N -> N
	echo "${1##*-}"
}
node_ip() { echo "198.51.100.$((16 + $(node_index "$1")))"; }
pod_cidr() { echo "203.0.113.$((($(node_index "$1") - 1) * 128))/25"; }
node_dir() { echo "$CL/nodes/$1"; }

# ---------------------------------------------------------------- build

cmd_build() {
	"$ROOT/hack/testbed.sh" build
	command -v "$RUNC" >/dev/null || die "$RUNC missing (Debian package runc; make deps)"
	[[ -x /bin/busybox ]] || die "/bin/busybox missing (Debian package busybox-static; make deps)"
	mkdir -p "$CL/bin" "$IMAGES"
	(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$CL/bin/" \
		./hack/cluster/clusternet ./hack/cluster/pause ./hack/cluster/netbench) ||
		die "building the cluster tier's helpers failed"
	"$ROOT/hack/cluster/images.sh" "$CL/bin" "$IMAGES"
}

# ---------------------------------------------------------------- network

netns_exists() { [[ -e /run/netns/$1 ]]; }

make_switch() {
	ip netns add "$SW_NS"
	ip -n "$SW_NS" link set lo up
	ip -n "$SW_NS" link add br0 type bridge
	ip -n "$SW_NS" addr add "$SW_IP/28" dev br0
	ip -n "$SW_NS" link set br0 up
	# The outside host: a machine on the nodes' L2 segment, not in the cluster.
	ip netns add "$EXT_NS"
	ip -n "$EXT_NS" link set lo up
	ip -n "$SW_NS" link add ext type veth peer name eth0 netns "$EXT_NS"
	ip -n "$SW_NS" link set ext master br0 up
	ip -n "$EXT_NS" addr add 198.51.100.126/26 dev eth0
	ip -n "$EXT_NS" link set eth0 up
}

# make_node_net NODE: the node's namespace, its uplink on the switch, the
# routes to the other node's pods and the `kubernetes` Service address.
make_node_net() {
	local node=$1 nsn=$NS-$1 other
	ip netns add "$nsn"
	ip -n "$nsn" link set lo up
	ip -n "$SW_NS" link add "$node" type veth peer name eth0 netns "$nsn"
	ip -n "$SW_NS" link set "$node" master br0 up
	ip -n "$nsn" addr add "$(node_ip "$node")/28" dev eth0
	ip -n "$nsn" link set eth0 up
	ip -n "$nsn" addr add "$API_SERVICE_IP/32" dev lo
	ip netns exec "$nsn" sysctl -qw net.ipv4.ip_forward=1
	ip -n "$SW_NS" route add "$(pod_cidr "$node")" via "$(node_ip "$node")"
	for other in "${NODES[@]}"; do
		[[ $other == "$node" ]] && continue
		ip -n "$nsn" route add "$(pod_cidr "$other")" via "$(node_ip "$other")"
	done
}

# ---------------------------------------------------------------- cgroups

make_cgroups() {
	local node=$1 c g
	for c in "${CGROUP_CONTROLLERS[@]}"; do
		g=/sys/fs/cgroup/$c/$NS-$node
		[[ -d /sys/fs/cgroup/$c ]] || continue
		mkdir -p "$g"
		if [[ $c == cpuset ]]; then
			cat /sys/fs/cgroup/cpuset/cpuset.cpus >"$g/cpuset.cpus"
			cat /sys/fs/cgroup/cpuset/cpuset.mems >"$g/cpuset.mems"
		fi
	done
}

# cgroup_pids NODE prints every process in the node's cgroups.
cgroup_pids() {
	local c
	for c in "${CGROUP_CONTROLLERS[@]}"; do
		[[ -d /sys/fs/cgroup/$c/$NS-$1 ]] || continue
		find "/sys/fs/cgroup/$c/$NS-$1" -name cgroup.procs -exec cat {} + 2>/dev/null
	done | sort -u
}

remove_cgroups() {
	local node=$1 c i
	for c in "${CGROUP_CONTROLLERS[@]}"; do
		[[ -d /sys/fs/cgroup/$c/$NS-$node ]] || continue
		for ((i = 0; i < 50; i++)); do
			find "/sys/fs/cgroup/$c/$NS-$node" -depth -type d -exec rmdir {} + 2>/dev/null || true
			[[ -d /sys/fs/cgroup/$c/$NS-$node ]] || break
			sleep 0.1
		done
		[[ ! -d /sys/fs/cgroup/$c/$NS-$node ]] || log "warning: cgroup $c/$NS-$node could not be removed"
	done
}

# ---------------------------------------------------------------- node files

write_node_files() {
	local node=$1 nd etc
	nd=$(node_dir "$node")
	etc=$nd/overlay/etc/upper
	mkdir -p "$nd/run" "$nd/containerd" "$nd/runc" "$etc/cni/net.d" "$nd/overlay/opt/upper/cni/bin"
	# The reference plugins a distribution installs with its primary network.
	cp -l "$BIN"/cni/* "$nd/overlay/opt/upper/cni/bin/" 2>/dev/null || cp "$BIN"/cni/* "$nd/overlay/opt/upper/cni/bin/"
	printf '%s\n' "$(printf '%s' "$NS-$node" | sha256sum | cut -c1-32)" >"$etc/machine-id"
	cat >"$etc/cni/net.d/10-cluster.conflist" <<-EOF
		{
		  "cniVersion": "1.0.0",
		  "name": "cluster",
		  "plugins": [
		    {
		      "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false,
		      "ipam": {"type": "host-local", "ranges": [[{"subnet": "$(pod_cidr "$node")"}]],
		               "routes": [{"dst": "0.0.0.0/0"}]}
		    }
		  ]
		}
	EOF
	cat >"$nd/containerd.toml" <<-EOF
		version = 3
		root = '$nd/containerd/root'
		state = '$nd/containerd/state'
		[grpc]
		  address = '$nd/run/containerd.sock'
		[ttrpc]
		  address = '$nd/run/containerd.sock.ttrpc'
		[debug]
		  address = '$nd/run/containerd-debug.sock'
		[plugins]
		  [plugins.'io.containerd.cri.v1.images'.pinned_images]
		    sandbox = '$(cat "$IMAGES/pause.name")'
		  [plugins.'io.containerd.cri.v1.runtime']
		    restrict_oom_score_adj = true
		    disable_hugetlb_controller = true
		    tolerate_missing_hugetlb_controller = true
		    cdi_spec_dirs = []
		    [plugins.'io.containerd.cri.v1.runtime'.containerd]
		      default_runtime_name = 'runc'
		      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
		        runtime_type = 'io.containerd.runc.v2'
		        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
		          BinaryName = '$RUNC'
		          SystemdCgroup = false
		          Root = '$nd/runc'
		    [plugins.'io.containerd.cri.v1.runtime'.cni]
		      bin_dirs = ['/opt/cni/bin']
		      conf_dir = '/etc/cni/net.d'
		      use_internal_loopback = true
		  [plugins.'io.containerd.grpc.v1.cri']
		    stream_server_address = '127.0.0.1'
		    stream_server_port = '0'
		  [plugins.'io.containerd.nri.v1.nri']
		    disable = true
	EOF
	cat >"$nd/kubelet.yaml" <<-EOF
		apiVersion: kubelet.config.k8s.io/v1beta1
		kind: KubeletConfiguration
		containerRuntimeEndpoint: unix://$nd/run/containerd.sock
		address: $(node_ip "$node")
		port: 10250
		healthzBindAddress: 127.0.0.1
		healthzPort: 10248
		readOnlyPort: 0
		authentication:
		  anonymous: {enabled: false}
		  webhook: {enabled: false}
		  x509: {clientCAFile: $CP_RUN/pki/ca.crt}
		authorization: {mode: AlwaysAllow}
		cgroupDriver: cgroupfs
		cgroupsPerQOS: true
		cgroupRoot: /$NS-$node
		failCgroupV1: false
		failSwapOn: false
		serializeImagePulls: false
		# Images are imported, never pulled: never collect them.
		imageGCHighThresholdPercent: 100
		imageGCLowThresholdPercent: 99
		evictionHard: {nodefs.available: "2%", imagefs.available: "2%", nodefs.inodesFree: "2%", memory.available: "100Mi"}
		nodeStatusUpdateFrequency: 4s
		shutdownGracePeriod: 0s
	EOF
}

# ---------------------------------------------------------------- node processes

ctr_node() { "$BIN/ctr" --address "$(node_dir "$1")/run/containerd.sock" -n k8s.io "${@:2}"; }

containerd_ready() { ctr_node "$CURRENT_NODE" version >/dev/null 2>&1; }
kubelet_healthy() { ip netns exec "$NS-$CURRENT_NODE" curl -sf --max-time 2 http://127.0.0.1:10248/healthz >/dev/null 2>&1; }

# wait_until NAME CHECK: CHECK true within READY_TIMEOUT while NAME lives.
wait_until() {
	local name=$1 check=$2 deadline=$((SECONDS + READY_TIMEOUT))
	until "$check"; do
		alive "$name" || die "$name exited; see $LOGS/$name.log"
		((SECONDS < deadline)) || die "$name not ready after ${READY_TIMEOUT}s; see $LOGS/$name.log"
		sleep 0.2
	done
}

import_images() {
	local image
	for image in "$IMAGES"/*.tar; do
		ctr_node "$1" images import "$image" >/dev/null ||
			die "importing $image into $1 failed"
	done
}

start_node() {
	local node=$1 nd
	nd=$(node_dir "$node")
	CURRENT_NODE=$node
	make_cgroups "$node"
	write_node_files "$node"
	_spawn "$node.ns" "$(realpath "$(command -v sleep)")" \
		nsenter --net="/run/netns/$NS-$node" unshare --mount --propagation private -- \
		bash "$ROOT/hack/cluster/node-ns.sh" "$nd"
	start_runtime "$node" import_images
	log "$node: containerd and kubelet up ($(node_ip "$node"), pods $(pod_cidr "$node"))"
}

# start_runtime NODE [HOOK] starts the node's containerd, runs HOOK NODE once
# it answers, then starts its kubelet.
start_runtime() {
	local node=$1 hook=${2:-} nd holder
	nd=$(node_dir "$node")
	CURRENT_NODE=$node
	holder=$(pid_of "$node.ns")
	spawn_in "$holder" "$node.containerd" "$BIN/containerd" --config "$nd/containerd.toml"
	wait_until "$node.containerd" containerd_ready
	[[ -z $hook ]] || "$hook" "$node"
	spawn_in "$holder" "$node.kubelet" "$BIN/kubelet" --config="$nd/kubelet.yaml" \
		--kubeconfig="$CP_RUN/node-$node.kubeconfig" --hostname-override="$node" \
		--node-ip="$(node_ip "$node")" --v=1
	wait_until "$node.kubelet" kubelet_healthy
}

# cmd_restart_runtime NODE stops the node's kubelet and containerd (as a
# package upgrade or a crash does: containers and their shims keep running)
# and starts them again. With --stopped-hook CMD, CMD runs while both are
# down (a test deletes pods meanwhile).
cmd_restart_runtime() {
	local node=${1:-} hook=
	[[ " ${NODES[*]} " == *" $node "* ]] || die "restart-runtime: unknown node '$node' (want one of ${NODES[*]})"
	[[ ${2:-} == --stopped-hook ]] && hook=${3:-}
	is_up || die "not up; run 'make cluster-up'"
	stop "$node.kubelet"
	stop "$node.containerd"
	[[ -z $hook ]] || bash -c "$hook" || die "restart-runtime: the hook failed: $hook"
	start_runtime "$node"
	log "$node: containerd and kubelet restarted"
}

# kill_namespace_members NODE kills every process in the node's mount
# namespace or cgroups but the holder: containers, shims (they daemonize and
# leave the runtime's process tree), and anything a test left behind.
kill_namespace_members() {
	local node=$1 holder mnt pid p
	holder=$(pid_of "$node.ns" 2>/dev/null) || holder=
	mnt=
	[[ -n $holder ]] && mnt=$(readlink "/proc/$holder/ns/mnt" 2>/dev/null) || true
	for ((i = 0; i < 3; i++)); do
		local victims=()
		while read -r pid; do [[ -n $pid ]] && victims+=("$pid"); done < <(cgroup_pids "$node")
		if [[ -n $mnt ]]; then
			for p in /proc/[0-9]*; do
				pid=${p#/proc/}
				[[ $pid == "$holder" || $pid == "$$" ]] && continue
				[[ $(readlink "$p/ns/mnt" 2>/dev/null) == "$mnt" ]] && victims+=("$pid")
			done
		fi
		((${#victims[@]})) || return 0
		kill -KILL "${victims[@]}" 2>/dev/null || true
		sleep 0.2
	done
}

stop_node() {
	local node=$1
	stop "$node.kubelet"
	stop "$node.containerd"
	kill_namespace_members "$node"
	stop "$node.ns"
	remove_cgroups "$node"
	netns_exists "$NS-$node" && ip netns del "$NS-$node"
	return 0
}

# ---------------------------------------------------------------- commands

start_clusternet() {
	local relays=() node
	for node in "${NODES[@]}"; do
		relays+=(-relay "/run/netns/$NS-$node=$API_SERVICE_IP:443=127.0.0.1:$APISERVER_PORT")
	done
	spawn clusternet "$CL/bin/clusternet" \
		-egress-socket "$CP_RUN/egress.sock" -egress-netns "/run/netns/$SW_NS" "${relays[@]}"
	local i
	for ((i = 0; i < 100; i++)); do
		[[ -S $CP_RUN/egress.sock ]] && return
		alive clusternet || die "clusternet exited; see $LOGS/clusternet.log"
		sleep 0.1
	done
	die "clusternet did not open $CP_RUN/egress.sock"
}

nodes_ready() {
	local n
	n=$("${KUBECTL[@]}" get nodes -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null | grep -c True) || true
	[[ $n == "${#NODES[@]}" ]]
}

is_up() {
	local node
	controlplane status >/dev/null 2>&1 && alive clusternet || return 1
	for node in "${NODES[@]}"; do
		alive "$node.containerd" && alive "$node.kubelet" || return 1
	done
}

cmd_up() {
	local start=$SECONDS node
	if is_up; then
		log "already up (kubeconfig $KUBECONFIG_OUT)"
		return
	fi
	[[ -x $CL/bin/clusternet && -e $IMAGES/pause.name ]] || die "run 'make cluster' (hack/cluster.sh build) first"
	cmd_down >/dev/null 2>&1 || true
	mkdir -p "$RUN" "$LOGS"
	controlplane up
	# shellcheck source=/dev/null
	. "$CP_RUN/config"
	ON_DIE=cmd_down
	make_switch
	for node in "${NODES[@]}"; do make_node_net "$node"; done
	start_clusternet
	for node in "${NODES[@]}"; do start_node "$node"; done
	local deadline=$((SECONDS + READY_TIMEOUT))
	until nodes_ready; do
		((SECONDS < deadline)) || die "nodes not Ready after ${READY_TIMEOUT}s; see $LOGS"
		sleep 0.5
	done
	ON_DIE=
	log "up in $((SECONDS - start))s: nodes ${NODES[*]} Ready; kubeconfig $KUBECONFIG_OUT"
}

cmd_down() {
	local node
	for node in "${NODES[@]}"; do stop_node "$node"; done
	stop clusternet
	netns_exists "$EXT_NS" && ip netns del "$EXT_NS"
	netns_exists "$SW_NS" && ip netns del "$SW_NS"
	controlplane down >/dev/null
	# Node state (images, containers, overlays) is made again by every up.
	rm -rf "$CL/nodes"
	log "down (logs kept in $LOGS)"
}

cmd_install() {
	local ref dir base
	ref=$(cat "$IMAGES/plexus.name" 2>/dev/null) || die "no plexus image recorded; run 'make cluster'"
	[[ $ref == *:* ]] || die "image reference $ref has no tag"
	# A cluster that was up before the image was rebuilt lacks it: import it.
	local node
	for node in "${NODES[@]}"; do
		[[ -n $(ctr_node "$node" images ls -q "name==$ref" 2>/dev/null) ]] && continue
		ctr_node "$node" images import "$IMAGES/plexus.tar" >/dev/null || die "importing $ref into $node failed"
		log "$node: imported $ref"
	done
	dir=$CL/install
	mkdir -p "$dir"
	base=$(realpath --relative-to="$dir" "$ROOT/deploy")
	cat >"$dir/kustomization.yaml" <<-EOF
		# plexus as a user installs it: deploy/ with the image set, nothing else.
		apiVersion: kustomize.config.k8s.io/v1beta1
		kind: Kustomization
		resources: [$base]
		images:
		  - name: ghcr.io/plexus-cni/plexus
		    newName: ${ref%:*}
		    newTag: "${ref##*:}"
	EOF
	"${KUBECTL[@]}" apply --server-side --force-conflicts -k "$dir" >/dev/null || die "kubectl apply -k $dir failed"
	"${KUBECTL[@]}" -n kube-system rollout status daemonset/plexusd --timeout="${READY_TIMEOUT}s" >/dev/null ||
		die "plexusd did not become ready; kubectl -n kube-system describe ds/plexusd"
	"${KUBECTL[@]}" -n kube-system rollout status deployment/plexus-controller --timeout="${READY_TIMEOUT}s" >/dev/null ||
		die "plexus-controller did not become available"
	log "plexus $ref installed with kubectl apply -k $dir"
}

# cmd_reload puts a rebuilt plexus image on the running nodes and installs it
# again: for a developer's edit-test loop (a dirty tree keeps its tag, so the
# pods are restarted to run the new image).
cmd_reload() {
	is_up || die "not up; run 'make cluster-up'"
	local node
	for node in "${NODES[@]}"; do import_images "$node"; done
	cmd_install
	"${KUBECTL[@]}" -n kube-system rollout restart daemonset/plexusd deployment/plexus-controller >/dev/null
	"${KUBECTL[@]}" -n kube-system rollout status daemonset/plexusd --timeout="${READY_TIMEOUT}s" >/dev/null &&
		"${KUBECTL[@]}" -n kube-system rollout status deployment/plexus-controller --timeout="${READY_TIMEOUT}s" >/dev/null ||
		die "plexus did not become ready again after the reload"
	log "plexus reloaded from $IMAGES/plexus.tar"
}

lock() {
	mkdir -p "$CL"
	exec 8>"$CL/.cluster.lock"
	flock -w 300 8 || die "another cluster.sh holds $CL/.cluster.lock"
}

main() {
	[[ $(id -u) == 0 ]] || die "the cluster tier needs root (network namespaces, cgroups, mounts)"
	case ${1:-} in
	build) cmd_build ;;
	up) lock && cmd_up ;;
	down) lock && cmd_down ;;
	install) cmd_install ;;
	reload) lock && cmd_reload ;;
	restart-runtime) lock && cmd_restart_runtime "${@:2}" ;;
	status)
		if is_up; then log "up"; else
			log "not up"
			exit 1
		fi
		;;
	*)
		echo "usage: $0 build|up|down|status|install|reload|restart-runtime NODE" >&2
		exit 2
		;;
	esac
}

main "$@"
