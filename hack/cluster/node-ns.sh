#!/usr/bin/env bash
# node-ns.sh NODE-DIR: run by hack/cluster.sh inside a node's new network and
# (private) mount namespace. It gives the node its own /etc, /opt, /var and
# /run as overlays of the machine's (writes go to NODE-DIR/overlay/*/upper),
# so that the paths a real node has — /etc/cni/net.d, /opt/cni/bin,
# /var/lib/kubelet, /var/log/pods, /run/netns — are the node's own and the
# manifests users apply (hostPath volumes included) work unchanged, while the
# machine's own directories are never written. It then makes every mount
# shared, as systemd does on a real host, so that mounts the runtime makes
# (network namespaces under /run/netns) reach containers that ask for them,
# and holds the namespaces open until it is killed.
set -euo pipefail
node_dir=$1

for d in etc opt var run; do
	o=$node_dir/overlay/$d
	mkdir -p "$o/upper" "$o/work"
	mount -t overlay "node-$d" -o "lowerdir=/$d,upperdir=$o/upper,workdir=$o/work" "/$d"
done
mount --make-rshared /
exec sleep infinity
