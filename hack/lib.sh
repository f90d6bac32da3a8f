#!/usr/bin/env bash
# Shared helpers for the hack/ scripts. Source it; do not run it.

# plexus-ipam-local processes that tests and benchmarks start take their
# per-space turns through lock files (pkg/ipam/store/nodelock): here, not in
# the host's /run/plexus.
export PLEXUS_IPAM_LOCK_DIR=${PLEXUS_IPAM_LOCK_DIR:-$(realpath -m "${PLEXUS_TESTBED_DIR:-.testbed}")/ipam-locks}

# at_exit CMD runs CMD when the sourcing script exits, after the commands
# registered before it (one EXIT trap for all of them).
AT_EXIT=()
at_exit() {
	AT_EXIT+=("$1")
	trap 'for ((_i = ${#AT_EXIT[@]} - 1; _i >= 0; _i--)); do eval "${AT_EXIT[_i]}" || true; done' EXIT
}

# ensure_testbed starts the control plane unless it is already up, and stops
# it again when the calling script exits, if (and only if) it started it.
ensure_testbed() {
	if hack/testbed.sh status >/dev/null 2>&1; then
		return
	fi
	hack/testbed.sh up
	at_exit 'hack/testbed.sh down >/dev/null'
}

# ensure_cluster does the same for the real two-node cluster (hack/cluster.sh).
ensure_cluster() {
	if hack/cluster.sh status >/dev/null 2>&1; then
		return
	fi
	hack/cluster.sh up
	at_exit 'hack/cluster.sh down'
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
