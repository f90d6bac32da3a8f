#!/usr/bin/env bash
# testbed.sh builds, starts and stops the plexus test bed: a real etcd and a
# real kube-apiserver on 127.0.0.1 (nothing schedules or runs pods), kubectl,
# the reference CNI plugins and cnitool. `build` also builds what the real
# cluster tier runs (kubelet, kube-scheduler, kube-controller-manager,
# containerd); hack/cluster.sh starts that tier.
#
#   hack/testbed.sh build            build what is missing or out of date
#   hack/testbed.sh up               start etcd + kube-apiserver, apply deploy/crds
#   hack/testbed.sh down             stop both, wait until processes and ports are gone
#   hack/testbed.sh stop-apiserver   stop kube-apiserver only
#   hack/testbed.sh start-apiserver  start it again with the same flags and port
#   hack/testbed.sh status           exit 0 when up
#
# Versions live in hack/tools/go.mod and nowhere else.
# PLEXUS_TESTBED_DIR overrides the state directory (default <repo>/.testbed);
# PLEXUS_TESTBED_BIN the binaries' directory (default <state dir>/bin), so that
# a second test bed (hack/testbed-soak.sh) can run from the same binaries.
# Logs live in <state dir>/logs and survive `down`; a fresh `up` moves the
# previous run's logs to <state dir>/logs/previous.
#
# PLEXUS_TESTBED_PROFILE=cluster starts the control plane of the real-cluster
# tier (hack/cluster.sh) instead: the same etcd and kube-apiserver, with node
# authorization, the ServiceAccount admission plugin, client certificates,
# kube-scheduler, kube-controller-manager, a token per node in
# PLEXUS_CLUSTER_NODES, and the API server's traffic to nodes, pods and
# webhooks sent through the HTTP CONNECT proxy on $RUN/egress.sock that
# hack/cluster.sh runs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
TOOLS=$ROOT/hack/tools
TB=$(realpath -m "${PLEXUS_TESTBED_DIR:-$ROOT/.testbed}")
BIN=$(realpath -m "${PLEXUS_TESTBED_BIN:-$TB/bin}")
CNI_BIN=$BIN/cni
STAMP=$BIN/.versions
RUN=$TB/run
LOGS=$TB/logs
PKI=$RUN/pki
PROFILE=${PLEXUS_TESTBED_PROFILE:-testbed}
CLUSTER_NODES=${PLEXUS_CLUSTER_NODES:-node-1 node-2}
# The cluster profile's Service range; its first address is the `kubernetes`
# Service, which hack/cluster.sh relays into every node.
CLUSTER_SERVICE_CIDR=198.51.100.0/28
CLUSTER_API_IP=198.51.100.1
KUBECONFIG_OUT=$TB/kubeconfig
ENV_OUT=$TB/env
CRDS=$ROOT/deploy/crds

# Seconds to wait for etcd / kube-apiserver readiness; hack/chaos.sh, which
# restarts them on a machine its own load keeps busy, waits longer.
READY_TIMEOUT=${PLEXUS_READY_TIMEOUT:-60}

CNI_PLUGINS_MOD=github.com/containernetworking/plugins
CNI_PLUGINS=(
	main/macvlan main/bridge main/host-device main/ipvlan main/vlan main/loopback main/ptp
	meta/tuning meta/portmap meta/bandwidth
	ipam/host-local ipam/static ipam/dhcp
)

log() { echo "testbed: $*"; }

# ON_DIE, when set, is a command run once before die exits: a failed start
# uses it to stop what it already started (logs stay in $LOGS).
ON_DIE=
die() {
	echo "testbed: error: $*" >&2
	if [[ -n $ON_DIE ]]; then
		local hook=$ON_DIE
		ON_DIE=
		$hook >&2 || true
	fi
	exit 1
}

# ---------------------------------------------------------------- build

# modversion prints the version of module $1 that hack/tools/go.mod selects.
modversion() { (cd "$TOOLS" && go list -m -f '{{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}' "$1"); }

# stamp_get prints the recorded build key of group $1.
stamp_get() {
	if [[ -f $STAMP ]]; then awk -v g="$1" '$1 == g { $1 = ""; sub(/^ /, ""); print }' "$STAMP"; fi
}

# stamp_set records build key $2 for group $1.
stamp_set() {
	local tmp=$STAMP.tmp
	if [[ -f $STAMP ]]; then awk -v g="$1" '$1 != g' "$STAMP"; fi >"$tmp"
	echo "$1 $2" >>"$tmp"
	mv "$tmp" "$STAMP"
}

# needs_build GROUP KEY FILE... is true when a file is missing or the key changed.
needs_build() {
	local group=$1 key=$2 f
	shift 2
	[[ $(stamp_get "$group") == "$key" ]] || return 0
	for f in "$@"; do [[ -x $f ]] || return 0; done
	return 1
}

# gobuild OUTDIR LDFLAGS PACKAGE... builds static, trimmed binaries from the tools module.
gobuild() {
	local out=$1 ldflags=$2
	shift 2
	mkdir -p "$out"
	(cd "$TOOLS" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/" "$@")
}

# KUBE_CMDS are the Kubernetes programs built from k8s.io/kubernetes: the test
# bed's control plane, and the kubelet, scheduler and controller-manager of the
# real-cluster tier (hack/cluster.sh).
KUBE_CMDS=(kube-apiserver kubectl kube-scheduler kube-controller-manager kubelet)

build_kube() {
	local v key minor ldflags c files=() pkgs=()
	v=$(modversion k8s.io/kubernetes)
	key="k8s.io/kubernetes@$v $(go env GOVERSION) ${KUBE_CMDS[*]}"
	key=${key// /,}
	for c in "${KUBE_CMDS[@]}"; do
		files+=("$BIN/$c")
		pkgs+=("k8s.io/kubernetes/cmd/$c")
	done
	needs_build kube "$key" "${files[@]}" || {
		log "${KUBE_CMDS[*]} $v: up to date"
		return
	}
	minor=${v#v1.}
	minor=${minor%%.*}
	ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$v"
	ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
	log "building ${KUBE_CMDS[*]} $v (a cold build takes many minutes)"
	gobuild "$BIN" "$ldflags" "${pkgs[@]}"
	stamp_set kube "$key"
}

# build_containerd builds containerd, its runc shim and ctr for the cluster
# tier from the module pinned in hack/containerd/go.mod, static and without
# the storage drivers this machine has no use for.
build_containerd() {
	local v key dir=$ROOT/hack/containerd mod=github.com/containerd/containerd/v2
	local tags="urfave_cli_no_docs no_btrfs no_zfs no_devmapper osusergo netgo static_build"
	v=$(cd "$dir" && go list -m -f '{{.Version}}' "$mod")
	key="$mod@$v $(go env GOVERSION) $(sha256sum "$dir/go.sum" | cut -c1-12)"
	key=${key// /,}
	needs_build containerd "$key" "$BIN/containerd" "$BIN/containerd-shim-runc-v2" "$BIN/ctr" || {
		log "containerd $v: up to date"
		return
	}
	log "building containerd $v"
	local ldflags="-s -w -X $mod/version.Version=$v"
	(cd "$dir" && CGO_ENABLED=0 go build -trimpath -tags "$tags" -ldflags "$ldflags" -o "$BIN/" \
		"$mod/cmd/containerd" "$mod/cmd/ctr") || die "building containerd failed"
	(cd "$dir" && CGO_ENABLED=0 go build -trimpath -tags "$tags no_grpc" -ldflags "$ldflags" -o "$BIN/" \
		"$mod/cmd/containerd-shim-runc-v2") || die "building containerd-shim-runc-v2 failed"
	stamp_set containerd "$key"
}

build_etcd() {
	local v key
	v=$(modversion go.etcd.io/etcd/server/v3)
	key="go.etcd.io/etcd/server/v3@$v $(go env GOVERSION) $(sha256sum "$TOOLS/cmd/etcd/main.go" | cut -c1-12)"
	needs_build etcd "$key" "$BIN/etcd" || {
		log "etcd $v: up to date"
		return
	}
	log "building etcd $v"
	gobuild "$BIN" "-s -w" ./cmd/etcd
	stamp_set etcd "$key"
}

build_cni_plugins() {
	local v key p pkgs=() files=()
	v=$(modversion "$CNI_PLUGINS_MOD")
	for p in "${CNI_PLUGINS[@]}"; do
		pkgs+=("$CNI_PLUGINS_MOD/plugins/$p")
		files+=("$CNI_BIN/${p#*/}")
	done
	key="$CNI_PLUGINS_MOD@$v $(go env GOVERSION) ${CNI_PLUGINS[*]}"
	key=${key// /,}
	needs_build cni-plugins "$key" "${files[@]}" || {
		log "CNI plugins $v: up to date"
		return
	}
	log "building CNI plugins $v: ${CNI_PLUGINS[*]##*/}"
	gobuild "$CNI_BIN" "-s -w -X $CNI_PLUGINS_MOD/pkg/utils/buildversion.BuildVersion=$v" "${pkgs[@]}"
	stamp_set cni-plugins "$key"
}

build_cnitool() {
	local v key
	v=$(modversion github.com/containernetworking/cni)
	key="github.com/containernetworking/cni@$v $(go env GOVERSION)"
	needs_build cnitool "$key" "$BIN/cnitool" || {
		log "cnitool $v: up to date"
		return
	}
	log "building cnitool $v"
	gobuild "$BIN" "-s -w" github.com/containernetworking/cni/cnitool
	stamp_set cnitool "$key"
}

cmd_build() {
	local start=$SECONDS
	command -v go >/dev/null || die "go is not on PATH"
	mkdir -p "$BIN" "$CNI_BIN"
	build_cni_plugins
	build_cnitool
	build_etcd
	build_kube
	build_containerd
	log "binaries in $BIN ($((SECONDS - start))s)"
}

# ---------------------------------------------------------------- processes

# shellcheck source=lib/proc.sh
. "$ROOT/hack/lib/proc.sh"

# ---------------------------------------------------------------- control plane

# load_config reads the ports chosen by the last `up`.
load_config() {
	[[ -f $RUN/config ]] || return 1
	# shellcheck source=/dev/null
	. "$RUN/config"
}

etcd_args() {
	local peer=http://127.0.0.1:$ETCD_PEER_PORT client=http://127.0.0.1:$ETCD_CLIENT_PORT
	ETCD_ARGS=(
		--name=testbed
		--data-dir="$RUN/etcd"
		--listen-client-urls="$client"
		--advertise-client-urls="$client"
		--listen-peer-urls="$peer"
		--initial-advertise-peer-urls="$peer"
		--initial-cluster="testbed=$peer"
		--initial-cluster-state=new
		--unsafe-no-fsync
		--log-level=warn
	)
}

# apiserver_args is the one place the kube-apiserver flags live.
apiserver_args() {
	# shellcheck disable=SC2054 # Node,RBAC is one flag value
	APISERVER_ARGS=(
		--etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT"
		--bind-address=127.0.0.1
		--advertise-address=127.0.0.1
		--secure-port="$APISERVER_PORT"
		--tls-cert-file="$PKI/apiserver.crt"
		--tls-private-key-file="$PKI/apiserver.key"
		--cert-dir="$RUN/apiserver-certs"
		--endpoint-reconciler-type=none
		--authorization-mode=Node,RBAC
		--token-auth-file="$PKI/tokens.csv"
		--anonymous-auth=false
		--service-account-issuer=https://kubernetes.default.svc
		--service-account-key-file="$PKI/sa.pub"
		--service-account-signing-key-file="$PKI/sa.key"
		--allow-privileged=true
		--enable-priority-and-fairness=false
		--profiling=false
		--v=1
	)
	if [[ $PROFILE == cluster ]]; then
		APISERVER_ARGS+=(
			--service-cluster-ip-range="$CLUSTER_SERVICE_CIDR"
			--enable-admission-plugins=NodeRestriction
			--client-ca-file="$PKI/ca.crt"
			--kubelet-client-certificate="$PKI/kubelet-client.crt"
			--kubelet-client-key="$PKI/kubelet-client.key"
			--kubelet-preferred-address-types=InternalIP,Hostname
			--egress-selector-config-file="$RUN/egress.yaml"
			--enable-aggregator-routing=true
		)
	else
		APISERVER_ARGS+=(
			--service-cluster-ip-range=198.51.100.0/24
			--disable-admission-plugins=ServiceAccount
		)
	fi
}

# cluster_component_args sets SCHEDULER_ARGS and CONTROLLER_MANAGER_ARGS.
cluster_component_args() {
	SCHEDULER_ARGS=(
		--kubeconfig="$RUN/kube-scheduler.kubeconfig"
		--authentication-kubeconfig="$RUN/kube-scheduler.kubeconfig"
		--authorization-kubeconfig="$RUN/kube-scheduler.kubeconfig"
		--leader-elect=false
		--bind-address=127.0.0.1
		--secure-port="$SCHEDULER_PORT"
		--v=1
	)
	CONTROLLER_MANAGER_ARGS=(
		--kubeconfig="$RUN/kube-controller-manager.kubeconfig"
		--authentication-kubeconfig="$RUN/kube-controller-manager.kubeconfig"
		--authorization-kubeconfig="$RUN/kube-controller-manager.kubeconfig"
		--use-service-account-credentials=true
		--service-account-private-key-file="$PKI/sa.key"
		--root-ca-file="$PKI/ca.crt"
		--service-cluster-ip-range="$CLUSTER_SERVICE_CIDR"
		--allocate-node-cidrs=false
		--leader-elect=false
		--bind-address=127.0.0.1
		--secure-port="$CONTROLLER_MANAGER_PORT"
		--node-monitor-grace-period=20s
		--v=1
	)
}

# write_egress_config sends the API server's traffic to the cluster (kubelets,
# pods, webhooks) through hack/cluster.sh's proxy; the rest goes direct.
write_egress_config() {
	cat >"$RUN/egress.yaml" <<-EOF
		apiVersion: apiserver.k8s.io/v1beta1
		kind: EgressSelectorConfiguration
		egressSelections:
		- name: cluster
		  connection:
		    proxyProtocol: HTTPConnect
		    transport:
		      uds:
		        udsName: $RUN/egress.sock
		- name: controlplane
		  connection:
		    proxyProtocol: Direct
		- name: etcd
		  connection:
		    proxyProtocol: Direct
	EOF
}

# make_pki creates the CA, the serving cert for 127.0.0.1, the
# service-account key pair and the admin token.
make_pki() {
	mkdir -p "$PKI"
	chmod 0700 "$PKI"
	(
		cd "$PKI"
		umask 077
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout ca.key -out ca.crt -days 30 -subj "/CN=plexus-testbed-ca" 2>/dev/null
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" 2>/dev/null
		printf '%s\n' "subjectAltName=IP:127.0.0.1,IP:$CLUSTER_API_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc" \
			"extendedKeyUsage=serverAuth" "keyUsage=critical,digitalSignature" >apiserver.ext
		openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
			-out apiserver.crt -days 30 -extfile apiserver.ext 2>/dev/null
		openssl genrsa -out sa.key 2048 2>/dev/null
		openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
		openssl rand -hex 32 >admin.token
		echo "$(<admin.token),admin,admin-uid,\"system:masters\"" >tokens.csv
		[[ $PROFILE == cluster ]] || exit 0
		# The API server's client certificate for kubelets (exec, logs).
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout kubelet-client.key -out kubelet-client.csr \
			-subj "/O=system:masters/CN=kube-apiserver-kubelet-client" 2>/dev/null
		printf '%s\n' "extendedKeyUsage=clientAuth" "keyUsage=critical,digitalSignature" >client.ext
		openssl x509 -req -in kubelet-client.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
			-out kubelet-client.crt -days 30 -extfile client.ext 2>/dev/null
		local user node
		for user in kube-scheduler kube-controller-manager; do
			openssl rand -hex 32 >"$user.token"
			echo "$(<"$user.token"),system:$user,$user-uid" >>tokens.csv
		done
		for node in $CLUSTER_NODES; do
			openssl rand -hex 32 >"node-$node.token"
			echo "$(<"node-$node.token"),system:node:$node,node-$node-uid,\"system:nodes\"" >>tokens.csv
		done
	) || die "generating certificates and keys with openssl failed"
}

# write_kubeconfig OUT [TOKEN-FILE [SERVER]] writes a kubeconfig (token,
# CA-verified TLS) to OUT: the admin's on 127.0.0.1 unless told otherwise.
write_kubeconfig() {
	local out=$1 token=${2:-$PKI/admin.token} server=${3:-https://127.0.0.1:$APISERVER_PORT} ca
	ca=$(base64 -w0 "$PKI/ca.crt")
	(
		umask 077
		cat >"$out.tmp" <<-EOF
			apiVersion: v1
			kind: Config
			clusters:
			- name: testbed
			  cluster:
			    server: $server
			    certificate-authority-data: $ca
			users:
			- name: admin
			  user:
			    token: $(<"$token")
			contexts:
			- name: testbed
			  context:
			    cluster: testbed
			    user: admin
			current-context: testbed
		EOF
		chmod 0600 "$out.tmp"
		mv "$out.tmp" "$out"
	)
}

write_env() {
	{
		printf 'export KUBECONFIG=%q\n' "$KUBECONFIG_OUT"
		printf 'export PLEXUS_TESTBED_DIR=%q\n' "$TB"
		printf 'export PLEXUS_TESTBED_BIN=%q\n' "$BIN"
		printf 'export PLEXUS_TESTBED_LOGS=%q\n' "$LOGS"
		printf 'export CNI_PATH=%q\n' "$CNI_BIN"
		printf 'export ETCD_ENDPOINTS=%q\n' "http://127.0.0.1:$ETCD_CLIENT_PORT"
		printf 'export KUBE_APISERVER_URL=%q\n' "https://127.0.0.1:$APISERVER_PORT"
	} >"$ENV_OUT"
}

etcd_healthy() {
	local reply
	reply=$({ exec 3<>"/dev/tcp/127.0.0.1/$ETCD_CLIENT_PORT" &&
		printf 'GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 && timeout 2 cat <&3; } 2>/dev/null) || return 1
	[[ $reply == *'"health":"true"'* ]]
}

apiserver_ready() {
	[[ $("$BIN/kubectl" --kubeconfig="$RUN/admin.kubeconfig" --request-timeout=2s get --raw=/readyz 2>/dev/null) == ok ]]
}

# wait_for NAME CHECK waits up to READY_TIMEOUT for CHECK while NAME stays alive.
wait_for() {
	local name=$1 check=$2 deadline=$((SECONDS + READY_TIMEOUT))
	until "$check"; do
		alive "$name" || die "$name exited; see $LOGS/$name.log"
		((SECONDS < deadline)) || die "$name not ready after ${READY_TIMEOUT}s; see $LOGS/$name.log"
		sleep 0.2
	done
}

start_etcd() {
	etcd_args
	spawn etcd "$BIN/etcd" "${ETCD_ARGS[@]}"
	wait_for etcd etcd_healthy
	log "etcd ready on 127.0.0.1:$ETCD_CLIENT_PORT"
}

start_apiserver() {
	apiserver_args
	spawn kube-apiserver "$BIN/kube-apiserver" "${APISERVER_ARGS[@]}"
	wait_for kube-apiserver apiserver_ready
	log "kube-apiserver ready on https://127.0.0.1:$APISERVER_PORT"
}

scheduler_healthy() { curl -ksf --max-time 2 "https://127.0.0.1:$SCHEDULER_PORT/healthz" >/dev/null; }
controller_manager_healthy() { curl -ksf --max-time 2 "https://127.0.0.1:$CONTROLLER_MANAGER_PORT/healthz" >/dev/null; }

# start_cluster_components starts kube-scheduler and kube-controller-manager
# (cluster profile).
start_cluster_components() {
	cluster_component_args
	spawn kube-scheduler "$BIN/kube-scheduler" "${SCHEDULER_ARGS[@]}"
	spawn kube-controller-manager "$BIN/kube-controller-manager" "${CONTROLLER_MANAGER_ARGS[@]}"
	wait_for kube-scheduler scheduler_healthy
	wait_for kube-controller-manager controller_manager_healthy
	log "kube-scheduler and kube-controller-manager ready"
}

apply_crds() {
	local files=("$CRDS"/*.yaml)
	[[ -e ${files[0]} ]] || return 0
	# The shared NAD and IPAMClaim CRDs have kustomizations of their own
	# (deploy/ leaves them out so that deleting plexus never deletes them).
	files+=("$CRDS/nad/network-attachment-definitions.k8s.cni.cncf.io.yaml" "$CRDS/ipamclaim/ipamclaims.k8s.cni.cncf.io.yaml")
	local args=()
	for f in "${files[@]}"; do args+=(-f "$f"); done
	"$BIN/kubectl" --kubeconfig="$KUBECONFIG_OUT" apply "${args[@]}" >/dev/null ||
		die "applying $CRDS failed"
	"$BIN/kubectl" --kubeconfig="$KUBECONFIG_OUT" wait --for=condition=Established \
		--timeout="${READY_TIMEOUT}s" "${args[@]}" >/dev/null ||
		die "CRDs in $CRDS not Established after ${READY_TIMEOUT}s"
	log "CRDs established: $(cd "$CRDS" && echo *.yaml nad/*definitions*.yaml)"
}

require_binaries() {
	local b bins=(etcd kube-apiserver kubectl)
	[[ $PROFILE == cluster ]] && bins+=(kube-scheduler kube-controller-manager)
	for b in "${bins[@]}"; do
		[[ -x $BIN/$b ]] || die "$BIN/$b missing; run 'make testbed' first"
	done
}

is_up() {
	load_config && alive etcd && alive kube-apiserver && apiserver_ready || return 1
	[[ $PROFILE != cluster ]] || { alive kube-scheduler && alive kube-controller-manager; }
}

cmd_up() {
	local start=$SECONDS
	require_binaries
	if is_up; then
		log "already up (kubeconfig $KUBECONFIG_OUT)"
		return
	fi
	if [[ $PROFILE != cluster ]] && load_config && alive etcd; then
		log "etcd runs but kube-apiserver does not; starting it"
		stop kube-apiserver "$APISERVER_PORT"
		start_apiserver
	else
		cmd_down >/dev/null
		rotate_logs
		ON_DIE=stop_all
		fresh_start
		ON_DIE=
	fi
	cp "$RUN/admin.kubeconfig" "$KUBECONFIG_OUT.tmp" && mv "$KUBECONFIG_OUT.tmp" "$KUBECONFIG_OUT"
	chmod 0600 "$KUBECONFIG_OUT"
	write_env
	apply_crds
	log "up in $((SECONDS - start))s; kubeconfig: $KUBECONFIG_OUT (source $ENV_OUT for KUBECONFIG, CNI_PATH, ...)"
}

fresh_start() {
	mkdir -p "$RUN"
	ETCD_CLIENT_PORT=$(free_port)
	ETCD_PEER_PORT=$(free_port "$ETCD_CLIENT_PORT")
	APISERVER_PORT=$(free_port "$ETCD_CLIENT_PORT" "$ETCD_PEER_PORT")
	printf 'ETCD_CLIENT_PORT=%s\nETCD_PEER_PORT=%s\nAPISERVER_PORT=%s\n' \
		"$ETCD_CLIENT_PORT" "$ETCD_PEER_PORT" "$APISERVER_PORT" >"$RUN/config"
	if [[ $PROFILE == cluster ]]; then
		SCHEDULER_PORT=$(free_port "$ETCD_CLIENT_PORT" "$ETCD_PEER_PORT" "$APISERVER_PORT")
		CONTROLLER_MANAGER_PORT=$(free_port "$ETCD_CLIENT_PORT" "$ETCD_PEER_PORT" "$APISERVER_PORT" "$SCHEDULER_PORT")
		printf 'SCHEDULER_PORT=%s\nCONTROLLER_MANAGER_PORT=%s\n' \
			"$SCHEDULER_PORT" "$CONTROLLER_MANAGER_PORT" >>"$RUN/config"
	fi
	make_pki
	write_kubeconfig "$RUN/admin.kubeconfig"
	if [[ $PROFILE == cluster ]]; then
		local user node
		for user in kube-scheduler kube-controller-manager; do
			write_kubeconfig "$RUN/$user.kubeconfig" "$PKI/$user.token"
		done
		# Nodes reach the API server at the `kubernetes` Service address,
		# which hack/cluster.sh relays into each node's namespace.
		for node in $CLUSTER_NODES; do
			write_kubeconfig "$RUN/node-$node.kubeconfig" "$PKI/node-$node.token" "https://$CLUSTER_API_IP:443"
		done
		write_egress_config
	fi
	start_etcd
	start_apiserver
	[[ $PROFILE != cluster ]] || start_cluster_components
}

# rotate_logs keeps the last run's logs in $LOGS/previous before a fresh start.
rotate_logs() {
	local f
	mkdir -p "$LOGS/previous"
	for f in "$LOGS"/*.log; do
		[[ -e $f ]] && mv -f "$f" "$LOGS/previous/"
	done
	return 0
}

# stop_all stops both processes, waiting for their ports when they are known.
stop_all() {
	if load_config; then
		if [[ $PROFILE == cluster ]]; then
			stop kube-controller-manager ${CONTROLLER_MANAGER_PORT:-}
			stop kube-scheduler ${SCHEDULER_PORT:-}
		fi
		stop kube-apiserver "$APISERVER_PORT"
		stop etcd "$ETCD_CLIENT_PORT" "$ETCD_PEER_PORT"
	else
		stop kube-controller-manager
		stop kube-scheduler
		stop kube-apiserver
		stop etcd
	fi
}

# cmd_down stops the control plane and removes its state, but not its logs.
cmd_down() {
	stop_all
	rm -rf "$RUN" "$KUBECONFIG_OUT" "$ENV_OUT"
	log "down (logs kept in $LOGS)"
}

cmd_stop_apiserver() {
	load_config || die "test bed is not up"
	stop kube-apiserver "$APISERVER_PORT"
}

cmd_start_apiserver() {
	load_config || die "test bed is not up"
	alive etcd || die "etcd is not running; run 'make testbed-up'"
	if alive kube-apiserver && apiserver_ready; then
		log "kube-apiserver already running"
		return
	fi
	stop kube-apiserver "$APISERVER_PORT"
	start_apiserver
}

# lock serialises every command that starts or stops processes.
lock() {
	mkdir -p "$TB"
	exec 9>"$TB/.lock"
	flock -w 300 9 || die "another testbed.sh holds $TB/.lock"
}

main() {
	case ${1:-} in
	build) cmd_build ;;
	up) lock && cmd_up ;;
	down) lock && cmd_down ;;
	stop-apiserver) lock && cmd_stop_apiserver ;;
	start-apiserver) lock && cmd_start_apiserver ;;
	status)
		if is_up; then log "up"; else
			log "not up"
			exit 1
		fi
		;;
	*)
		echo "usage: $0 build|up|down|stop-apiserver|start-apiserver|status" >&2
		exit 2
		;;
	esac
}

main "$@"
