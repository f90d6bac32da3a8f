#!/usr/bin/env bash
# The whole suite: vet, unit tests, then the integration tier on the real
# test bed (kube-apiserver + etcd on 127.0.0.1, reference CNI plugins, network
# namespaces). The control plane is started here and always stopped again.
#
# Each phase's `go test -json` goes through hack/testreport, which prints the
# package lines and failures as go test does, then every skipped test with its
# reason; the last line counts all phases: "tests: N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."

export PLEXUS_REQUIRE_TESTBED=1
GO=${GO:-go}
TB=${PLEXUS_TESTBED_DIR:-.testbed}

. hack/lib.sh

REPORT=$TB/tools/testreport
STATE=$(mktemp)
at_exit 'rm -f "$STATE"'
status=0

# phase NAME [-C DIR] GO-TEST-ARGS... runs one `go test -json` phase through the report
# and records its time; a failure marks the run failed and goes on.
phase() {
	local name=$1 start=$SECONDS dir=()
	shift
	if [[ $1 == -C ]]; then
		dir=(-C "$2")
		shift 2
	fi
	echo "== $name"
	if ! $GO "${dir[@]}" test -json "$@" | "$REPORT" -phase "$name" -state "$STATE"; then
		status=1
	fi
	echo "== $name: $((SECONDS - start))s"
}

echo "== go vet"
$GO vet ./...
$GO -C hack/image vet ./...
$GO -C hack/chart vet ./...
$GO build -o "$REPORT" ./hack/testreport

echo "== control plane"
ensure_testbed

# Packages outside test/ run in parallel. TestStopStartAPIServer stops the
# shared API server: it runs later, alone, with the end-to-end tests.
phase "unit and package integration tests" -count=1 -timeout 15m \
	-skip '^TestStopStartAPIServer$' $($GO list ./... | grep -v '/test/')
# hack/image is a module of its own (the image builder).
phase "image builder tests" -C hack/image -count=1 ./...
# hack/chart too (Helm's Go packages): charts/plexus against deploy/.
phase "Helm chart tests" -C hack/chart -count=1 ./...

# test/ holds the end-to-end tests, some of which stop the API server on
# purpose: one package at a time. The demo, the benchmark and the chaos suite
# have their own targets (make demo, make bench, make chaos).
phase "end-to-end tests" -count=1 -p 1 -timeout 20m \
	$($GO list ./test/... | grep -v -e '/test/demo$' -e '/test/bench$' -e '/test/cluster$' -e '/test/chaos$')
PLEXUS_TESTBED_DISRUPTIVE=1 phase "disruptive test bed tests" -count=1 \
	-run '^TestStopStartAPIServer$' ./internal/testbed

# The real cluster: plexus installed from its image with `kubectl apply -k`
# on two nodes running kubelet, containerd and runc; scenarios through the API.
echo "== real cluster"
start=$SECONDS
ensure_cluster
echo "== real cluster up: $((SECONDS - start))s"
phase "real-cluster tests" -count=1 -p 1 -timeout 25m ./test/cluster/...

"$REPORT" -final -state "$STATE" || status=1
exit $status
