#!/usr/bin/env bash
# make bench: first the summary table (TestBenchSummary: ADD/DEL latency of
# the delegates run directly, plexus in process and through plexusd, with
# ratios; plexus-ipam's allocations/s and requests per allocation, in
# process and through plexusd, beside Whereabouts' published figures;
# PLEXUS_BENCH_IPAM_BURST, _ROUNDS change its bursts). Then the details:
# plexus ADD/DEL latency against the delegates run directly, and
# API requests per ADD, on the local control plane; then the same through
# plexusd (daemon mode) with its peak RSS under a burst of ADDs.
# PLEXUS_BENCH_PODS, PLEXUS_BENCH_MULTI_PODS and PLEXUS_BENCH_BURST change
# the pod counts (default 200, 50 and 50); macvlan + plexus-ipam with and
# without plexusd's /ipam (PLEXUS_BENCH_IPAMD_PODS, default 100); then
# plexus-ipam on each store (PLEXUS_BENCH_IPAM_PODS, default 1000). Last, on
# the real cluster (started if it is not up): S7 throughput, pod startup with
# and without net1, hot-plug latency (p50/p99 over 50 changes), plexusd's memory.
set -euo pipefail
cd "$(dirname "$0")/.."
. hack/lib.sh

ensure_testbed
echo "== the summary: latency against the delegates run directly, and plexus-ipam's throughput (Kubernetes store)"
run_test_binary ./test/bench TestBenchSummary PLEXUS_BENCH=1
echo
echo "== plexus meta-plugin (in process)"
run_test_binary ./test/bench TestBench PLEXUS_BENCH=1
echo
echo "== plexus as a shim in front of plexusd (daemon mode)"
run_test_binary ./test/bench TestBenchDaemon PLEXUS_BENCH=1
echo
echo "== net1 = macvlan + plexus-ipam: in process, through plexusd, through plexusd's /ipam"
run_test_binary ./test/bench TestBenchIPAMDaemon PLEXUS_BENCH=1
echo
echo "== plexus-ipam stores: 1000 allocations by 50 clients, on an empty /16 and on a /16 90% full"
PLEXUS_REQUIRE_TESTBED=1 go test -count=1 -run '^$' -bench Allocate -benchtime 1x -timeout 30m \
	./pkg/ipam/store/etcdstore ./pkg/ipam/store/kubestore | grep -E 'Benchmark|^ok|FAIL'
echo
echo "== plexus-ipam: 1000 pods' IPAM through the binary, 50 at a time, first ADD to last"
run_test_binary ./test/bench TestBenchIPAMPods PLEXUS_BENCH=1
echo
echo "== the real cluster: S7 throughput (plexus's net1 against macvlans made by hand), pod startup, hot-plug latency, plexusd memory"
ensure_cluster
run_test_binary ./test/cluster '(TestBenchS7Throughput|TestBenchPodStartup|TestBenchHotplugLatency)' PLEXUS_BENCH=1
