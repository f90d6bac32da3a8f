#!/usr/bin/env bash
# make bench: plexus ADD/DEL latency against the delegates run directly, and
# API requests per ADD, on the local control plane; then the same through
# plexusd (daemon mode) with its peak RSS under a burst of ADDs.
# PLEXUS_BENCH_PODS, PLEXUS_BENCH_MULTI_PODS and PLEXUS_BENCH_BURST change
# the pod counts (default 200, 50 and 50).
set -euo pipefail
cd "$(dirname "$0")/.."
. hack/lib.sh

ensure_testbed
echo "== plexus meta-plugin (in process)"
run_test_binary ./test/bench TestBench PLEXUS_BENCH=1
echo
echo "== plexus as a shim in front of plexusd (daemon mode)"
run_test_binary ./test/bench TestBenchDaemon PLEXUS_BENCH=1
