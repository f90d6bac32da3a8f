#!/usr/bin/env bash
# make fuzz: run every fuzz target for a bounded time, one at a time, and
# print one summary line per target and the total.
#
#   hack/fuzz.sh          check the target list, then fuzz each target
#   hack/fuzz.sh list     check the target list and print it
#
# FUZZTIME (default 30s) is the time per target, in go test -fuzztime's
# form (60s, 2m, or 10000x for a count of inputs). FUZZPARALLEL (default 1)
# is the number of fuzzing workers. FUZZ, a regular expression, fuzzes only
# the targets whose package:name it matches.
#
# Before fuzzing, the script asks go test which Fuzz functions exist
# (go test -list) and stops if one is missing from TARGETS or one in
# TARGETS no longer exists. A failing input is written by go test to
# <package>/testdata/fuzz/<target>/: keep it there as a regression seed,
# `go test` runs it from then on.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
FUZZTIME=${FUZZTIME:-30s}
FUZZPARALLEL=${FUZZPARALLEL:-1}
FUZZ=${FUZZ:-}

# Every fuzz target of the module, package:function.
TARGETS=(
	./internal/cache:FuzzDecode
	./internal/config:FuzzParse
	./internal/daemon/server:FuzzServe
	./internal/daemon/wire:FuzzDecodeRequest
	./internal/daemon/wire:FuzzRequestFromArgs
	./pkg/ipam/alloc:FuzzSetDecode
	./pkg/ipam/config:FuzzLoad
	./pkg/nad:FuzzParse
	./pkg/netselect:FuzzParseNetworks
)

# discover prints package:function for every Fuzz function go test lists,
# in the packages whose test files declare one.
discover() {
	local mod pkgs
	mod=$($GO list -m)
	pkgs=$(find . -path './.*' -prune -o -path ./hack/tools -prune -o -name '*_test.go' -print |
		xargs -r grep -lE '^func Fuzz' | xargs -r -n1 dirname | sort -u)
	[ -n "$pkgs" ] || return 0
	# go test -list prints a package's matching names, then "ok <import path>".
	# shellcheck disable=SC2086 # one word per package
	$GO test -list '^Fuzz' $pkgs | awk -v mod="$mod/" '
		/^Fuzz/ { names[n++] = $1; next }
		/^ok / {
			dir = "./" substr($2, length(mod) + 1)
			for (i = 0; i < n; i++) print dir ":" names[i]
			n = 0
		}'
}

# check compares the discovered targets with TARGETS.
check() {
	local found listed missing stale
	found=$(discover | sort)
	listed=$(printf '%s\n' "${TARGETS[@]}" | sort)
	missing=$(comm -23 <(echo "$found") <(echo "$listed"))
	stale=$(comm -13 <(echo "$found") <(echo "$listed"))
	if [ -n "$missing" ] || [ -n "$stale" ]; then
		[ -z "$missing" ] || printf 'fuzz: not in TARGETS of hack/fuzz.sh: %s\n' $missing >&2
		[ -z "$stale" ] || printf 'fuzz: in TARGETS but not a fuzz test: %s\n' $stale >&2
		exit 1
	fi
}

# seconds converts go test's elapsed time (1h2m3s, 45s) to seconds.
seconds() {
	awk '{ t = 0; while (match($0, /^[0-9]+[hms]/)) {
		n = substr($0, 1, RLENGTH - 1); u = substr($0, RLENGTH, 1)
		t += n * (u == "h" ? 3600 : u == "m" ? 60 : 1); $0 = substr($0, RLENGTH + 1) }
		print t }' <<<"$1"
}

# fuzz_one runs one target, prints its summary line and adds its fuzzing
# time to fuzzed; it returns go test's status.
fuzz_one() {
	local pkg=${1%%:*} name=${1##*:} log start status=0 wall elapsed execs
	log=$(mktemp)
	start=$(date +%s)
	$GO test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -parallel "$FUZZPARALLEL" "$pkg" >"$log" 2>&1 || status=$?
	wall=$(($(date +%s) - start))
	elapsed=$(grep -o 'elapsed: [0-9hms]*' "$log" | tail -n1 | cut -d' ' -f2)
	execs=$(grep -o 'execs: [0-9]*' "$log" | tail -n1 | cut -d' ' -f2)
	# Go before 1.27 can fail a target at the end of -fuzztime with
	# "context deadline exceeded" and no failing input (a race in its fuzz
	# coordinator, go.dev/issue/75804): that is no finding; counted apart.
	local verdict=ok
	if [ "$status" -ne 0 ] && grep -q '^    context deadline exceeded$' "$log" && ! grep -q 'Failing input written to' "$log"; then
		status=0 verdict=flake flaked=$((flaked + 1))
	elif [ "$status" -ne 0 ]; then
		verdict=FAIL
		cat "$log"
	fi
	elapsed=$(seconds "${elapsed:-0s}")
	fuzzed=$((fuzzed + elapsed))
	printf 'fuzz: %-5s %-26s %-20s %5ds fuzzing %10s execs %5ds wall\n' \
		"$verdict" "$pkg" "$name" "$elapsed" "${execs:-0}" "$wall"
	rm -f "$log"
	return "$status"
}

check
if [ "${1:-}" = list ]; then
	printf '%s\n' "${TARGETS[@]}"
	exit 0
fi

failed=0 flaked=0 fuzzed=0 total_start=$(date +%s)
for t in "${TARGETS[@]}"; do
	if [ -n "$FUZZ" ] && ! [[ $t =~ $FUZZ ]]; then
		continue
	fi
	fuzz_one "$t" || failed=$((failed + 1))
done
echo "fuzz: $failed failed, $flaked ended by Go's deadline race (no failing input); ${fuzzed}s fuzzing in all (FUZZTIME=$FUZZTIME per target), $(($(date +%s) - total_start))s wall with builds"
[ "$failed" -eq 0 ]
