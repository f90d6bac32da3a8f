#!/usr/bin/env bash
# testbed-soak.sh proves that the test bed starts reliably on a loaded machine:
# CYCLES (default 50) consecutive `up` + `down` of a second, private test bed
# (its own state dir, the same binaries), while busy loops keep every core
# busy. Any failed cycle fails the run; its logs stay in the soak's state dir.
# Bounded: each cycle has a time limit, and the busy loops end with the script.
set -euo pipefail
cd "$(dirname "$0")/.."

CYCLES=${CYCLES:-50}
CYCLE_TIMEOUT=${CYCLE_TIMEOUT:-180} # seconds for one up + down
TB=$(realpath -m "${PLEXUS_TESTBED_DIR:-.testbed}")
SOAK=$TB/soak
export PLEXUS_TESTBED_BIN=${PLEXUS_TESTBED_BIN:-$TB/bin}

hogs=()
stop_hogs() {
	((${#hogs[@]})) && kill "${hogs[@]}" 2>/dev/null
	wait 2>/dev/null || true
	PLEXUS_TESTBED_DIR=$SOAK hack/testbed.sh down >/dev/null 2>&1 || true
}
trap stop_hogs EXIT

for ((i = 0; i < $(nproc); i++)); do
	timeout $((CYCLES * CYCLE_TIMEOUT)) bash -c 'while :; do :; done' &
	hogs+=($!)
done
echo "soak: $CYCLES up/down cycles of a test bed in $SOAK with ${#hogs[@]} busy loops"

failed=0 start=$SECONDS
for ((c = 1; c <= CYCLES; c++)); do
	t0=$SECONDS
	if PLEXUS_TESTBED_DIR=$SOAK timeout "$CYCLE_TIMEOUT" hack/testbed.sh up >"$SOAK.cycle.log" 2>&1 &&
		PLEXUS_TESTBED_DIR=$SOAK timeout "$CYCLE_TIMEOUT" hack/testbed.sh down >>"$SOAK.cycle.log" 2>&1; then
		echo "soak: cycle $c ok ($((SECONDS - t0))s)"
	else
		failed=$((failed + 1))
		mkdir -p "$SOAK/failed/$c"
		cp -r "$SOAK.cycle.log" "$SOAK/logs/." "$SOAK/failed/$c/" 2>/dev/null || true
		echo "soak: cycle $c FAILED; output and logs in $SOAK/failed/$c:"
		sed 's/^/    /' "$SOAK.cycle.log"
		PLEXUS_TESTBED_DIR=$SOAK hack/testbed.sh down >/dev/null 2>&1 || true
	fi
done
echo "soak: $((CYCLES - failed))/$CYCLES cycles passed in $((SECONDS - start))s"
((failed == 0))
