#!/usr/bin/env bash
# make bench: plexus ADD/DEL latency against the delegates run directly, and
# API requests per ADD, on the local control plane. PLEXUS_BENCH_PODS and
# PLEXUS_BENCH_MULTI_PODS change the pod counts (default 200 and 50).
set -euo pipefail
cd "$(dirname "$0")/.."
. hack/lib.sh

ensure_testbed
echo "== plexus meta-plugin (in process)"
run_test_binary ./test/bench TestBench PLEXUS_BENCH=1
