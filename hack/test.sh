#!/usr/bin/env bash
# The whole suite: vet, unit tests, then the integration tier on the real
# test bed (kube-apiserver + etcd on 127.0.0.1, reference CNI plugins, network
# namespaces). The control plane is started here and always stopped again.
set -euo pipefail
cd "$(dirname "$0")/.."

export PLEXUS_REQUIRE_TESTBED=1
GO=${GO:-go}

. hack/lib.sh

echo "== go vet"
$GO vet ./...
$GO -C hack/image vet ./...

echo "== control plane"
ensure_testbed

# Packages outside test/ run in parallel. test/ holds the end-to-end tests,
# some of which stop the API server on purpose: they run one package at a time.
echo "== unit and package integration tests"
$GO test -count=1 -timeout 15m $($GO list ./... | grep -v '/test/')
$GO -C hack/image test -count=1 ./...

echo "== end-to-end tests"
$GO test -count=1 -p 1 -timeout 20m ./test/...
