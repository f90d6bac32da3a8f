# plexus — multi-network pods for Kubernetes.
# `make demo` and `make test` are the two entry points; everything they need
# is built or installed by the targets below.

SHELL := /bin/bash
GO ?= go
BIN := bin
TESTBED := .testbed
BINARIES := plexus plexus-ipam plexusd plexus-controller plexusctl
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/plexus-cni/plexus/internal/buildinfo.Version=$(VERSION)

.PHONY: all build test unit integration demo bench testbed testbed-up testbed-down deps clean fmt vet

all: build

## deps: install the Debian packages the tests and the demo use (root).
deps:
	@hack/deps.sh

## build: the plexus binaries into bin/.
build:
	@mkdir -p $(BIN)
	@for b in $(BINARIES); do \
		if [ -d cmd/$$b ] && ls cmd/$$b/*.go >/dev/null 2>&1; then \
			CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/$$b ./cmd/$$b || exit 1; \
		fi; \
	done

## testbed: build the real parts (kube-apiserver, kubectl, etcd, CNI plugins, cnitool) into .testbed/bin/.
testbed: deps
	@hack/testbed.sh build

## testbed-up: start etcd + kube-apiserver on 127.0.0.1; kubeconfig at .testbed/kubeconfig.
testbed-up: testbed
	@hack/testbed.sh up

## testbed-down: stop the control plane and wait until its processes and ports are gone.
testbed-down:
	@hack/testbed.sh down

## unit: tests that need neither root nor a control plane.
unit:
	$(GO) test -count=1 ./...

## test: the whole suite: unit tests, then the integration tier on the test bed.
test: build testbed
	@hack/test.sh

## demo: control plane, two nodes, three pods with net1 macvlan, pings, network-status.
demo: build testbed
	@hack/demo.sh

## bench: ADD/DEL latency and API requests per ADD, plexus vs. the delegates alone.
bench: build testbed
	@hack/bench.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...

clean:
	rm -rf $(BIN)
