#!/usr/bin/env bash
# make bench: plexus ADD/DEL latency against the delegates run directly, and
# API requests per ADD, on the local control plane. PLEXUS_BENCH_PODS and
# PLEXUS_BENCH_MULTI_PODS change the pod counts (default 200 and 50).
set -euo pipefail
cd "$(dirname "$0")/.."

started=0
cleanup() { if [ "$started" = 1 ]; then hack/testbed.sh down >/dev/null || true; fi; }
trap cleanup EXIT
if ! hack/testbed.sh status >/dev/null 2>&1; then
	hack/testbed.sh up
	started=1
fi
bin=$(mktemp -d)/bench.test
go test -c -o "$bin" ./test/bench
echo "== plexus meta-plugin"
PLEXUS_BENCH=1 PLEXUS_REQUIRE_TESTBED=1 "$bin" -test.run '^TestBench$' -test.count=1 -test.timeout 30m
rm -f "$bin"
