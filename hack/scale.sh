#!/usr/bin/env bash
# scale.sh is `make scale`: the scale simulation (test/scale) on a private
# test bed, which it starts and always stops again. For each size it runs
# N pods over M simulated nodes, K of them with a real plexusd and the
# others with a simulated one (the same watches), plexus-ipam churn and
# plexus-controller against the one API server, and prints one table:
# each figure per size, extrapolated to 1,000 nodes × 30 pods, against its
# target (docs/scale.md). Bounded in count and time.
#
#   SCALE_SIZES          PODSxNODESxREAL,... (default 200x50x4,400x100x4,800x200x4,1600x400x4)
#   SCALE_ADD_RATE       ADDs (and DELs) per second (default 50)
#   SCALE_IDLE           seconds of the idle window (default 45)
#   SCALE_NODE_IDLE      seconds of the real plexusds' own idle window (default 20)
#   SCALE_GRACE          the reclaimer's grace period, seconds (default 5)
#   SCALE_DRAIN_TIMEOUT  seconds the drain may take at most (default 60)
#   SCALE_DURATION       seconds the whole simulation may take at most (default 780)
#   SCALE_KUBE_API_QPS, SCALE_KUBE_API_BURST
#                        passed to plexus-controller as --kube-api-qps and
#                        --kube-api-burst when its --help lists them
#
# PLEXUS_TESTBED_DIR is the test bed whose binaries it uses (default
# .testbed; PLEXUS_TESTBED_BIN overrides the binaries' directory); nothing
# is written there. The private test bed lives in SCALE_DIR (default
# .testbed/scale of this checkout); the logs (plexusd's, the controller's,
# the test bed's) stay in SCALE_DIR/logs.
set -euo pipefail
cd "$(dirname "$0")/.."
. hack/lib.sh

TB=$(realpath -m "${PLEXUS_TESTBED_DIR:-.testbed}")
SCALE=$(realpath -m "${SCALE_DIR:-.testbed/scale}")
export PLEXUS_TESTBED_BIN=${PLEXUS_TESTBED_BIN:-$TB/bin}
export PLEXUS_TESTBED_DIR=$SCALE/bed
export SCALE_LOG_DIR=$SCALE/logs
export SCALE_PID_FILE=$SCALE/pids
mkdir -p "$SCALE_LOG_DIR"
rm -f "$SCALE_LOG_DIR"/plexusd-*.log "$SCALE_LOG_DIR"/controller.log "$SCALE_LOG_DIR"/klog.log "$SCALE_PID_FILE"

for b in plexusd plexus-ipam plexus-ipam-local plexus-controller; do
	[[ -x bin/$b ]] || { echo "scale: bin/$b missing; run 'make build'" >&2; exit 1; }
done
at_exit 'hack/testbed.sh down >/dev/null' # also after a failed start
# plexusd and plexus-controller run in process groups of their own; the
# test stops them, and this stops those a dead test binary left behind.
stop_left() {
	[[ -f $SCALE_PID_FILE ]] || return 0
	local p
	while read -r p; do
		if grep -qaE 'plexusd|plexus-controller' "/proc/$p/cmdline" 2>/dev/null; then
			kill -KILL -- "-$p" 2>/dev/null || true
		fi
	done <"$SCALE_PID_FILE"
}
at_exit stop_left
hack/testbed.sh up

duration=${SCALE_DURATION:-780}
echo "scale: sizes ${SCALE_SIZES:-200x50x4,400x100x4,800x200x4,1600x400x4}; at most ${duration}s after the build"
dir=$(mktemp -d)
at_exit "rm -rf '$dir'"
go test -c -o "$dir/scale.test" ./test/scale
PLEXUS_REQUIRE_TESTBED=1 PLEXUS_SCALE=1 "$dir/scale.test" -test.run '^TestScale$' -test.count=1 \
	-test.v -test.timeout "$((duration + 120))s" 2>&1 | grep --line-buffered -v -e '^=== ' -e '^--- PASS' -e '^PASS$'
