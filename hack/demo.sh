#!/usr/bin/env bash
# make demo: bring the local control plane up (if it is not), run the demo
# (two nodes, three pods with a macvlan net1, pings, network-status), and
# stop the control plane again if this script started it.
set -euo pipefail
cd "$(dirname "$0")/.."

started=0
cleanup() { if [ "$started" = 1 ]; then hack/testbed.sh down >/dev/null || true; fi; }
trap cleanup EXIT
if ! hack/testbed.sh status >/dev/null 2>&1; then
	hack/testbed.sh up
	started=1
fi
bin=$(mktemp -d)/demo.test
go test -c -o "$bin" ./test/demo
PLEXUS_DEMO=1 PLEXUS_REQUIRE_TESTBED=1 "$bin" -test.run '^TestDemo$' -test.count=1
rm -f "$bin"
