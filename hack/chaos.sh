#!/usr/bin/env bash
# chaos.sh is `make chaos`: the fault-injection suite (test/chaos) on a
# private test bed, which it starts and always stops again (its API server
# is stopped and started on purpose: never the shared one). Bounded in count
# and time; prints one table and fails on any duplicate or leak.
#
#   CHAOS_SUITES    ipam (plexus-ipam), meta (plexus with killed delegates); default both
#   CHAOS_OPS       ADDs per IPAM run (default 10000)
#   CHAOS_WORKERS   concurrent runtimes (default 20)
#   CHAOS_DURATION  seconds one store's run may take at most (default 1800)
#   CHAOS_STORES    kubernetes,etcd (default both)
#   CHAOS_MODES     process (plexus-ipam runs each request itself), plexusd
#                   (it hands them to a plexusd, which is killed and restarted);
#                   default both
#   CHAOS_META_CYCLES  pods added and deleted through plexus (default 2000)
#
# PLEXUS_TESTBED_DIR is the test bed whose binaries it uses (default
# .testbed; PLEXUS_TESTBED_BIN overrides the binaries' directory); nothing
# is written there. The private test bed lives in CHAOS_DIR (default
# .testbed/chaos of this checkout); the logs (the reclaimer's, plexusd's,
# plexus's, the test bed's) stay in CHAOS_DIR/logs. PLEXUS_READY_TIMEOUT
# (default here 300 s) bounds each start of etcd or the API server.
set -euo pipefail
cd "$(dirname "$0")/.."
. hack/lib.sh

TB=$(realpath -m "${PLEXUS_TESTBED_DIR:-.testbed}")
CHAOS=$(realpath -m "${CHAOS_DIR:-.testbed/chaos}")
export PLEXUS_TESTBED_BIN=${PLEXUS_TESTBED_BIN:-$TB/bin}
export PLEXUS_TESTBED_DIR=$CHAOS/bed
export CHAOS_LOG_DIR=$CHAOS/logs
# A store restarted mid-run starts on a machine the run keeps loaded: at a
# load of 40 on 2 cores the API server once needed more than 60 s.
export PLEXUS_READY_TIMEOUT=${PLEXUS_READY_TIMEOUT:-300}
mkdir -p "$CHAOS_LOG_DIR"
rm -f "$CHAOS_LOG_DIR"/controller-*.log

for b in plexus plexus-ipam plexusd; do
	[[ -x bin/$b ]] || { echo "chaos: bin/$b missing; run 'make build'" >&2; exit 1; }
done
at_exit 'hack/testbed.sh down >/dev/null' # also after a failed start
hack/testbed.sh up

stores=${CHAOS_STORES:-kubernetes,etcd} modes=${CHAOS_MODES:-process,plexusd}
runs=$(($(tr ',' '\n' <<<"$stores" | wc -l) * $(tr ',' '\n' <<<"$modes" | wc -l) + 1))
timeout=$((runs * (${CHAOS_DURATION:-1800} + 600)))
echo "chaos: suites ${CHAOS_SUITES:-ipam,meta} (IPAM: ${CHAOS_OPS:-10000} ADDs per run, stores $stores, modes $modes," \
	"${CHAOS_WORKERS:-20} workers; meta-plugin: ${CHAOS_META_CYCLES:-2000} pods); at most ${timeout}s"
dir=$(mktemp -d)
at_exit "rm -rf '$dir'"
go test -c -o "$dir/chaos.test" ./test/chaos
PLEXUS_REQUIRE_TESTBED=1 PLEXUS_CHAOS=1 "$dir/chaos.test" -test.run '^TestChaos$' -test.count=1 \
	-test.v -test.timeout "${timeout}s" 2>&1 | grep --line-buffered -v -e '^=== ' -e '^--- PASS' -e '^PASS$'
