#!/usr/bin/env bash
# images.sh HELPERS-DIR OUT-DIR builds the cluster tier's own images as OCI
# archives in OUT-DIR, with hack/image (go-containerregistry; no registry, no
# daemon), each with NAME.name holding its reference:
#   pause    containerd's sandbox image (hack/cluster/pause)
#   toolbox  plexus.local/toolbox:latest: Debian's busybox-static with its
#            applets (sh, ping and ping6, ip, ...) and hack/cluster/netbench
# plexus's own image is `make image`'s (.cluster/images/plexus.tar); its
# reference is passed as PLEXUS_IMAGE and recorded in plexus.name.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
helpers=$(realpath "$1")
out=$(realpath -m "$2")
mkdir -p "$out"

builder=$helpers/image
go -C "$ROOT/hack/image" build -o "$builder" .
spec_dir=$(mktemp -d)
trap 'rm -rf "$spec_dir"' EXIT

# build NAME REF SPEC: one archive, only when its inputs changed.
build() {
	local name=$1 ref=$2 spec=$3 key
	key=$(cat "$spec" "$builder" "$helpers/$name.inputs" 2>/dev/null | sha256sum | cut -c1-16)
	if [[ -f $out/$name.tar && $(cat "$out/$name.key" 2>/dev/null) == "$key" ]]; then
		echo "images: $ref up to date"
		return
	fi
	"$builder" -spec "$spec" -root / -out "$out/$name.tar" -name "$ref" >/dev/null
	echo "$ref" >"$out/$name.name"
	echo "$key" >"$out/$name.key"
	echo "images: built $ref"
}

# pause
cat >"$spec_dir/pause.json" <<EOF
{"files": [{"path": "/pause", "source": "${helpers#/}/pause", "mode": "0755"}],
 "entrypoint": ["/pause"],
 "labels": {"org.opencontainers.image.title": "pause (plexus cluster tier)"}}
EOF
sha256sum "$helpers/pause" >"$helpers/pause.inputs"
build pause plexus.local/pause:1 "$spec_dir/pause.json"

# toolbox
{
	printf '{"files": [\n'
	printf '  {"path": "/bin/busybox", "source": "bin/busybox", "mode": "0755"},\n'
	printf '  {"path": "/usr/local/bin/netbench", "source": "%s", "mode": "0755"}' "${helpers#/}/netbench"
	/bin/busybox --list | grep -v -x -e busybox | sort -u | while read -r applet; do
		printf ',\n  {"path": "/bin/%s", "link": "busybox"}' "$applet"
	done
	printf '\n ],\n "env": ["PATH=/usr/local/bin:/bin"],\n'
	printf ' "entrypoint": ["/bin/sh", "-c", "trap \\"exit 0\\" TERM INT; while :; do sleep 1; done"],\n'
	printf ' "labels": {"org.opencontainers.image.title": "toolbox (plexus cluster tier): busybox, netbench"}}\n'
} >"$spec_dir/toolbox.json"
sha256sum /bin/busybox "$helpers/netbench" >"$helpers/toolbox.inputs"
build toolbox plexus.local/toolbox:latest "$spec_dir/toolbox.json"

if [[ -n ${PLEXUS_IMAGE:-} ]]; then
	[[ -f $out/plexus.tar ]] || { echo "images: $out/plexus.tar missing: run make image" >&2; exit 1; }
	echo "$PLEXUS_IMAGE" >"$out/plexus.name"
fi
