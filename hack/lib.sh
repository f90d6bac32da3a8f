#!/usr/bin/env bash
# Shared helpers for the hack/ scripts. Source it; do not run it.

# ensure_testbed starts the control plane unless it is already up, and stops
# it again when the calling script exits, if (and only if) it started it.
ensure_testbed() {
	if hack/testbed.sh status >/dev/null 2>&1; then
		return
	fi
	hack/testbed.sh up
	trap 'hack/testbed.sh down >/dev/null || true' EXIT
}

# run_test_binary PKG TEST ENV... builds PKG's test binary and runs TEST
# with the given environment (NAME=VALUE words), printing as it goes.
run_test_binary() {
	local pkg=$1 test=$2 dir
	shift 2
	dir=$(mktemp -d)
	go test -c -o "$dir/t.test" "$pkg"
	env PLEXUS_REQUIRE_TESTBED=1 "$@" "$dir/t.test" -test.run "^${test}\$" -test.count=1 -test.timeout 30m
	rm -rf "$dir"
}
