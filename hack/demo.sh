#!/usr/bin/env bash
# make demo: the real thing. A two-node cluster (kubelet, containerd, runc) on
# this machine, plexus installed from its own image with `kubectl apply -k`,
# S1's Deployment of three pods with a macvlan net1, then what a user looks
# at: the pods, each pod's interfaces and network-status, pings across nodes
# and to a host outside the cluster, `plexusctl get pods`. The cluster is torn
# down at the end if this script started it.
set -euo pipefail
cd "$(dirname "$0")/.."
. hack/lib.sh

export KUBECONFIG=$PWD/.cluster/kubeconfig
KUBECTL=.testbed/bin/kubectl
NS=demo
EXT=198.51.100.126

ensure_cluster
hack/cluster.sh install

hl=$(mktemp -d /tmp/plexus-demo-hl-XXXXXX) # host-local's leases, shared by both nodes
at_exit "rm -rf $hl"
$KUBECTL delete namespace $NS --ignore-not-found --wait >/dev/null
$KUBECTL create namespace $NS >/dev/null
at_exit "$KUBECTL delete namespace $NS --wait=false >/dev/null"

echo "== the NAD of the Multus quick start (TEST-NET addresses, the nodes' eth0 as master)"
$KUBECTL apply -n $NS -f - <<EOF
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: macvlan-conf}
spec:
  config: '{"cniVersion":"0.3.0","type":"macvlan","master":"eth0","mode":"bridge",
    "ipam":{"type":"host-local","subnet":"198.51.100.64/26","rangeStart":"198.51.100.65",
    "rangeEnd":"198.51.100.81","routes":[{"dst":"0.0.0.0/0"}],"gateway":"$EXT","dataDir":"$hl"}}'
EOF
echo "== a Deployment of three, annotated k8s.v1.cni.cncf.io/networks: macvlan-conf"
$KUBECTL apply -n $NS -f - <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: samplepod}
spec:
  replicas: 3
  selector: {matchLabels: {app: samplepod}}
  template:
    metadata:
      labels: {app: samplepod}
      annotations: {k8s.v1.cni.cncf.io/networks: macvlan-conf}
    spec:
      terminationGracePeriodSeconds: 1
      topologySpreadConstraints:
        - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule,
           labelSelector: {matchLabels: {app: samplepod}}}
      containers:
        - {name: toolbox, image: plexus.local/toolbox:latest, imagePullPolicy: IfNotPresent}
EOF
$KUBECTL -n $NS rollout status deployment/samplepod --timeout=120s
echo
$KUBECTL -n $NS get pods -o wide
pods=$($KUBECTL -n $NS get pods -l app=samplepod -o jsonpath='{.items[*].metadata.name}')

status_of() {
	$KUBECTL -n $NS get pod "$1" -o jsonpath='{.metadata.annotations.k8s\.v1\.cni\.cncf\.io/network-status}'
}

echo
echo "== interfaces and network-status"
row='%-28s %-8s %-10s %-22s %-18s %s\n'
# shellcheck disable=SC2059 # the format is ours
printf "$row" POD NODE INTERFACE NETWORK IP MAC
for p in $pods; do
	node=$($KUBECTL -n $NS get pod "$p" -o jsonpath='{.spec.nodeName}')
	status_of "$p" |
		jq -r --arg p "$p" --arg n "$node" '.[] | [$p, $n, .interface, .name, (.ips // [] | join(",")), (.mac // "")] | @tsv' |
		while IFS=$'\t' read -r a b c d e f; do
			# shellcheck disable=SC2059
			printf "$row" "$a" "$b" "$c" "$d" "$e" "$f"
		done
done
first=${pods%% *}
echo
echo "== inside $first"
$KUBECTL -n $NS exec "$first" -- ip -o addr show

echo
echo "== pings over net1, across nodes and to $EXT (outside the cluster)"
targets=$EXT
for p in $pods; do
	targets+=" $(status_of "$p" | jq -r '.[] | select(.interface=="net1") | .ips[0]')"
done
failed=0
for p in $pods; do
	for ip in $targets; do
		if $KUBECTL -n $NS exec "$p" -- ping -c 1 -W 3 "$ip" >/dev/null 2>&1; then r=ok; else
			r=FAILED
			failed=1
		fi
		printf '%-28s -> %-16s %s\n' "$p" "$ip" "$r"
	done
done

echo
echo "== plexusctl get pods -n $NS"
bin/plexusctl --kubeconfig "$KUBECONFIG" get pods -n $NS
exit $failed
