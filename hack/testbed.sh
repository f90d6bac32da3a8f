#!/usr/bin/env bash
# testbed.sh builds, starts and stops the plexus test bed: a real etcd and a
# real kube-apiserver on 127.0.0.1 (nothing schedules or runs pods), kubectl,
# the reference CNI plugins and cnitool.
#
#   hack/testbed.sh build            build what is missing or out of date
#   hack/testbed.sh up               start etcd + kube-apiserver, apply deploy/crds
#   hack/testbed.sh down             stop both, wait until processes and ports are gone
#   hack/testbed.sh stop-apiserver   stop kube-apiserver only
#   hack/testbed.sh start-apiserver  start it again with the same flags and port
#   hack/testbed.sh status           exit 0 when up
#
# Versions live in hack/tools/go.mod and nowhere else.
# PLEXUS_TESTBED_DIR overrides the state directory (default <repo>/.testbed).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS=$ROOT/hack/tools
TB=${PLEXUS_TESTBED_DIR:-$ROOT/.testbed}
BIN=$TB/bin
CNI_BIN=$BIN/cni
STAMP=$BIN/.versions
RUN=$TB/run
PKI=$RUN/pki
KUBECONFIG_OUT=$TB/kubeconfig
ENV_OUT=$TB/env
CRDS=$ROOT/deploy/crds

READY_TIMEOUT=60 # seconds to wait for etcd / kube-apiserver readiness
STOP_TIMEOUT=10  # seconds after SIGTERM before SIGKILL, and again for ports

CNI_PLUGINS_MOD=github.com/containernetworking/plugins
CNI_PLUGINS=(
	main/macvlan main/bridge main/host-device main/ipvlan main/vlan main/loopback main/ptp
	meta/tuning meta/portmap meta/bandwidth
	ipam/host-local ipam/static ipam/dhcp
)

log() { echo "testbed: $*"; }
die() {
	echo "testbed: error: $*" >&2
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

build_kube() {
	local v key minor ldflags
	v=$(modversion k8s.io/kubernetes)
	key="k8s.io/kubernetes@$v $(go env GOVERSION)"
	needs_build kube "$key" "$BIN/kube-apiserver" "$BIN/kubectl" || {
		log "kube-apiserver, kubectl $v: up to date"
		return
	}
	minor=${v#v1.}
	minor=${minor%%.*}
	ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$v"
	ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
	log "building kube-apiserver, kubectl $v (a cold build takes several minutes)"
	gobuild "$BIN" "$ldflags" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl
	stamp_set kube "$key"
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
	log "binaries in $BIN ($((SECONDS - start))s)"
}

# ---------------------------------------------------------------- processes

# alive NAME is true when the process recorded in $RUN/NAME.pid runs our binary.
alive() {
	local pidfile=$RUN/$1.pid pid exe
	[[ -f $pidfile ]] || return 1
	pid=$(<"$pidfile")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
	[[ $exe == "$BIN/$1" ]]
}

# port_free PORT is true when nothing listens on 127.0.0.1:PORT.
port_free() { [[ -z $(ss -Hltn "sport = :$1") ]]; }

# free_port prints a TCP port nothing listens on, not in $* (already chosen).
free_port() {
	local p i
	for ((i = 0; i < 200; i++)); do
		p=$((20000 + RANDOM % 12000))
		[[ " $* " == *" $p "* ]] && continue
		port_free "$p" && {
			echo "$p"
			return
		}
	done
	die "no free port found"
}

# spawn NAME ARGS... starts $BIN/NAME in its own session, logging to $RUN/NAME.log.
spawn() {
	local name=$1
	shift
	setsid "$BIN/$name" "$@" </dev/null >>"$RUN/$name.log" 2>&1 9>&- &
	echo $! >"$RUN/$name.pid"
}

# stop NAME PORT... sends TERM, then KILL after STOP_TIMEOUT, and waits until
# the process is gone and its ports are free.
stop() {
	local name=$1 pid i
	shift
	if alive "$name"; then
		pid=$(<"$RUN/$name.pid")
		log "stopping $name (pid $pid)"
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
			[[ -d /proc/$pid ]] || break
			sleep 0.1
		done
		if [[ -d /proc/$pid ]]; then
			log "$name did not exit after ${STOP_TIMEOUT}s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
			for ((i = 0; i < 50; i++)); do
				[[ -d /proc/$pid ]] || break
				sleep 0.1
			done
			[[ ! -d /proc/$pid ]] || die "$name (pid $pid) survived SIGKILL"
		fi
	fi
	rm -f "$RUN/$name.pid"
	wait_ports_free "$@"
}

wait_ports_free() {
	local p i
	for p in "$@"; do
		for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
			port_free "$p" && break
			sleep 0.1
		done
		port_free "$p" || die "port $p is still in use"
	done
}

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
		--service-cluster-ip-range=198.51.100.0/24
		--disable-admission-plugins=ServiceAccount
		--allow-privileged=true
		--enable-priority-and-fairness=false
		--profiling=false
		--v=1
	)
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
		printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc" \
			"extendedKeyUsage=serverAuth" "keyUsage=critical,digitalSignature" >apiserver.ext
		openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
			-out apiserver.crt -days 30 -extfile apiserver.ext 2>/dev/null
		openssl genrsa -out sa.key 2048 2>/dev/null
		openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
		openssl rand -hex 32 >admin.token
		echo "$(<admin.token),admin,admin-uid,\"system:masters\"" >tokens.csv
	) || die "generating certificates and keys with openssl failed"
}

# write_kubeconfig writes an admin kubeconfig (token, CA-verified TLS) to $1.
write_kubeconfig() {
	local out=$1 ca
	ca=$(base64 -w0 "$PKI/ca.crt")
	(
		umask 077
		cat >"$out.tmp" <<-EOF
			apiVersion: v1
			kind: Config
			clusters:
			- name: testbed
			  cluster:
			    server: https://127.0.0.1:$APISERVER_PORT
			    certificate-authority-data: $ca
			users:
			- name: admin
			  user:
			    token: $(<"$PKI/admin.token")
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
		alive "$name" || die "$name exited; see $RUN/$name.log"
		((SECONDS < deadline)) || die "$name not ready after ${READY_TIMEOUT}s; see $RUN/$name.log"
		sleep 0.2
	done
}

start_etcd() {
	etcd_args
	spawn etcd "${ETCD_ARGS[@]}"
	wait_for etcd etcd_healthy
	log "etcd ready on 127.0.0.1:$ETCD_CLIENT_PORT"
}

start_apiserver() {
	apiserver_args
	spawn kube-apiserver "${APISERVER_ARGS[@]}"
	wait_for kube-apiserver apiserver_ready
	log "kube-apiserver ready on https://127.0.0.1:$APISERVER_PORT"
}

apply_crds() {
	local files=("$CRDS"/*.yaml)
	[[ -e ${files[0]} ]] || return 0
	"$BIN/kubectl" --kubeconfig="$KUBECONFIG_OUT" apply -f "$CRDS" >/dev/null ||
		die "applying $CRDS failed"
	"$BIN/kubectl" --kubeconfig="$KUBECONFIG_OUT" wait --for=condition=Established \
		--timeout="${READY_TIMEOUT}s" -f "$CRDS" >/dev/null ||
		die "CRDs in $CRDS not Established after ${READY_TIMEOUT}s"
	log "CRDs established: $(cd "$CRDS" && echo *.yaml)"
}

require_binaries() {
	local b
	for b in etcd kube-apiserver kubectl; do
		[[ -x $BIN/$b ]] || die "$BIN/$b missing; run 'make testbed' first"
	done
}

is_up() { load_config && alive etcd && alive kube-apiserver && apiserver_ready; }

cmd_up() {
	local start=$SECONDS
	require_binaries
	if is_up; then
		log "already up (kubeconfig $KUBECONFIG_OUT)"
		return
	fi
	if load_config && alive etcd; then
		log "etcd runs but kube-apiserver does not; starting it"
		stop kube-apiserver "$APISERVER_PORT"
		start_apiserver
	else
		cmd_down >/dev/null
		fresh_start
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
	make_pki
	write_kubeconfig "$RUN/admin.kubeconfig"
	start_etcd
	start_apiserver
}

cmd_down() {
	if load_config; then
		stop kube-apiserver "$APISERVER_PORT"
		stop etcd "$ETCD_CLIENT_PORT" "$ETCD_PEER_PORT"
	else
		stop kube-apiserver
		stop etcd
	fi
	rm -rf "$RUN" "$KUBECONFIG_OUT" "$ENV_OUT"
	log "down"
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
