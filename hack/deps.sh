#!/usr/bin/env bash
# deps.sh installs the Debian packages the plexus tests and demo use, and
# only those that are missing. Quick and silent when everything is present.
set -euo pipefail

# package -> what needs it
PACKAGES=(
	iproute2     # ip, ss: network namespaces, links, free-port checks
	util-linux   # nsenter, setsid, flock
	openssl      # test bed CA, serving cert, service-account keys, token
	iputils-ping # ping between pods in the demo
	procps       # ps, pgrep
	psmisc       # fuser, killall
	jq           # JSON in scripts
	librsvg2-bin # rsvg-convert: the graph test renders plexusctl's SVG to PNG
	iptables     # the portmap plugin
	curl         # health checks of the control plane's components and kubelets
	runc         # the cluster tier's container runtime (containerd's runc shim)
	busybox-static # the cluster tier's toolbox image: a shell, ping, ip
	dnsmasq-base # the cluster tier's DHCP server on the macvlan segment (test/cluster/dhcp_test.go)
)

missing=()
installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${PACKAGES[@]}" 2>/dev/null || true)
for pkg in "${PACKAGES[@]}"; do
	if ! grep -qx "$pkg install ok installed" <<<"$installed"; then
		missing+=("$pkg")
	fi
done

if ((${#missing[@]} == 0)); then
	exit 0
fi

echo "deps: installing ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
	echo "deps: must run as root to install ${missing[*]}" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: done"
