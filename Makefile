# plexus — multi-network pods for Kubernetes.
# `make demo` and `make test` are the two entry points; everything they need
# is built or installed by the targets below.

SHELL := /bin/bash
GO ?= go
BIN := bin
TESTBED := .testbed
# plexus-ipam-local started by tests takes its node's turns here, not in the
# host's /run/plexus (pkg/ipam/store/nodelock; hack/lib.sh does the same).
export PLEXUS_IPAM_LOCK_DIR ?= $(CURDIR)/$(TESTBED)/ipam-locks
BINARIES := plexus plexus-shim plexus-ipam plexus-ipam-local plexusd plexus-controller plexusctl
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
FUZZTIME ?= 30s
FUZZPARALLEL ?= 1
LDFLAGS := -s -w -X github.com/plexus-cni/plexus/internal/buildinfo.Version=$(VERSION)
# The image: a full reference (registry host included, so that a runtime
# does not expand it to docker.io/library/...), tagged with the version.
IMAGE_REPO ?= plexus.local/plexus
IMAGE ?= $(IMAGE_REPO):$(VERSION)
IMAGE_ARCHIVE := .cluster/images/plexus.tar
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
# Read git once per make: a `?=` variable is expanded at every use, so a
# commit made while `make test` runs would give the image archive one tag
# and the installed manifests another.
VERSION := $(VERSION)
REVISION := $(REVISION)
SOURCE_DATE_EPOCH := $(SOURCE_DATE_EPOCH)
IMAGE := $(IMAGE)

.PHONY: all build chart-crds test unit integration demo bench chaos scale fuzz image testbed testbed-up testbed-down testbed-soak cluster cluster-up cluster-reload cluster-down demo-sim deps clean fmt vet generate

all: build

## deps: install the Debian packages the tests and the demo use (root).
deps:
	@hack/deps.sh

## build: the plexus binaries into bin/, bin/kubectl-plexus (the kubectl plugin) linking to plexusctl,
## and bin/dhcp (the reference dhcp plugin, whose daemon plexusd runs).
build:
	@mkdir -p $(BIN)
	@for b in $(BINARIES); do \
		if [ -d cmd/$$b ] && ls cmd/$$b/*.go >/dev/null 2>&1; then \
			CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/$$b ./cmd/$$b || exit 1; \
		fi; \
	done
	@ln -sfn plexusctl $(BIN)/kubectl-plexus # kubectl finds it on the PATH as "kubectl plexus"
	@# The reference dhcp plugin, whose daemon plexusd runs (the image ships it),
	@# at the version hack/dhcp/go.mod pins (it says why not hack/tools's).
	@v=$$($(GO) -C hack/dhcp list -m -f '{{.Version}}' github.com/containernetworking/plugins) && \
		CGO_ENABLED=0 $(GO) -C hack/dhcp build -trimpath \
		-ldflags "-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$$v" \
		-o $(CURDIR)/$(BIN)/dhcp github.com/containernetworking/plugins/plugins/ipam/dhcp

## image: plexus's image from bin/ as an OCI archive (.cluster/images/plexus.tar),
## reproducible, for `ctr -n k8s.io images import`; the Dockerfile builds the same.
image: build
	@GOOS= GOARCH= $(GO) -C hack/image run . -spec plexus.json -root $(CURDIR) \
		-out $(CURDIR)/$(IMAGE_ARCHIVE) -name $(IMAGE) -platform linux/$$($(GO) env GOARCH) \
		-arg VERSION=$(VERSION) -arg REVISION=$(REVISION) -created $(SOURCE_DATE_EPOCH)

## testbed: build the real parts (kube-apiserver, kubectl, etcd, CNI plugins, cnitool) into .testbed/bin/.
testbed: deps
	@hack/testbed.sh build

## testbed-up: start etcd + kube-apiserver on 127.0.0.1; kubeconfig at .testbed/kubeconfig.
testbed-up: testbed
	@hack/testbed.sh up

## testbed-down: stop the control plane and wait until its processes and ports are gone.
testbed-down:
	@hack/testbed.sh down

## testbed-soak: 50 up/down cycles of a private test bed with every core busy; fails on any failed start.
testbed-soak: testbed
	@hack/testbed-soak.sh

## chaos: plexus-ipam and plexus under injected faults (SIGKILLed plugins and delegates, API server,
## etcd and plexusd restarts, a killed reclaimer) on a private test bed; one table; fails on a duplicate or leak.
chaos: build testbed
	@hack/chaos.sh

## scale: a simulated large cluster on a private test bed (N pods over M nodes, K real plexusds, the
## others simulated watchers; plexus-ipam churn, plexus-controller); one table of figures per size,
## extrapolated to 1,000 nodes × 30 pods against the targets (docs/scale.md). SCALE_SIZES=PODSxNODESxREAL,...
scale: build testbed
	@hack/scale.sh

## cluster: build the real-cluster tier: kubelet, scheduler, controller-manager, containerd
## (make testbed), its helpers and images (pause, toolbox, plexus's own).
cluster: build testbed image
	@PLEXUS_IMAGE=$(IMAGE) hack/cluster.sh build

## cluster-up: two real nodes (containerd + runc + kubelet) and a control plane; kubeconfig .cluster/kubeconfig.
cluster-up: cluster
	@hack/cluster.sh up

## cluster-reload: rebuild plexus's image and run it on the running cluster (edit-test loop).
cluster-reload: cluster
	@hack/cluster.sh reload

## cluster-down: stop the real cluster; nothing stays behind outside .cluster/.
cluster-down:
	@hack/cluster.sh down

## unit: tests that need neither root nor a control plane.
unit:
	$(GO) test -count=1 ./...
	$(GO) -C hack/image test -count=1 ./...
	$(GO) -C hack/chart test -count=1 ./...

## test: the whole suite: unit tests, then the integration tier on the test bed.
test: build testbed cluster
	@hack/test.sh

## demo: a real two-node cluster, plexus installed with kubectl apply -k, three pods with a
## macvlan net1, their interfaces and network-status, pings across nodes.
demo: build testbed cluster
	@hack/demo.sh

## demo-sim: the same on the node simulator (network namespaces driven through libcni, no kubelet).
demo-sim: build testbed
	@hack/demo-sim.sh

## bench: ADD/DEL latency and API requests per ADD, plexus vs. the delegates alone; on the
## real cluster, S7 throughput against hand-made macvlans and pod startup.
bench: build testbed cluster
	@hack/bench.sh

## fuzz: every fuzz target for FUZZTIME (default 30s) each, one at a time; FUZZ=regexp picks some.
fuzz:
	@FUZZTIME=$(FUZZTIME) FUZZPARALLEL=$(FUZZPARALLEL) FUZZ='$(FUZZ)' hack/fuzz.sh

## generate: the DeepCopy methods, the CRDs in deploy/crds (and their copy in charts/plexus/crds) and the typed client in pkg/client,
## from the API types in pkg/apis (docs/development.md); a test fails when they are stale.
generate:
	@hack/generate.sh
	@$(MAKE) --no-print-directory chart-crds

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...
	$(GO) -C hack/image vet ./...
	$(GO) -C hack/chart vet ./...

## chart-crds: copy deploy/crds/*.plexus.dev.yaml into charts/plexus/crds/ (after the CRDs change;
## hack/chart's tests fail while the two differ).
chart-crds:
	rm -f charts/plexus/crds/*.yaml
	cp deploy/crds/*.plexus.dev.yaml charts/plexus/crds/

clean:
	rm -rf $(BIN) $(IMAGE_ARCHIVE)
