#!/usr/bin/env bash
# make demo-sim: the node-simulator demo. Bring the local control plane up (if it is not), run the demo
# (two nodes, three pods with a macvlan net1, pings, network-status), and
# stop the control plane again if this script started it.
set -euo pipefail
cd "$(dirname "$0")/.."
. hack/lib.sh

ensure_testbed
run_test_binary ./test/demo TestDemo PLEXUS_DEMO=1
