package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLinksOnlyTheAPIGroupsItReads keeps the meta-plugin's in-process start
// short: without the daemon the runtime execs it for every pod, and every
// package it links adds its initialisation to that start. It reads pods,
// events, DRA claims and NADs, so it links core/v1 and resource/v1 of
// k8s.io/api, and it makes its requests with net/http (internal/kube) and
// asks the kubelet's PodResources with a gRPC client of its own
// (internal/devices): no client-go at all, no gRPC, no kubelet API package
// and no protobuf module (whose internal/detrand reads the executable at
// initialisation).
func TestLinksOnlyTheAPIGroupsItReads(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/plexus-cni/plexus/cmd/plexus").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	allowed := map[string]bool{"k8s.io/api/core/v1": true, "k8s.io/api/resource/v1": true}
	forbidden := []string{"k8s.io/client-go/", "google.golang.org/grpc", "k8s.io/kubelet/", "google.golang.org/protobuf/",
		"github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/"}
	var groups int
	for _, d := range deps {
		switch {
		case strings.HasPrefix(d, "k8s.io/api/") && !allowed[d]:
			t.Errorf("links API group package %s", d)
		case strings.HasPrefix(d, "k8s.io/api/"):
			groups++
		}
		for _, f := range forbidden {
			if strings.HasPrefix(d, f) {
				t.Errorf("links %s", d)
			}
		}
	}
	if groups != len(allowed) {
		t.Errorf("links %d of the API group packages it reads, want %d (go list listed %d packages)", groups, len(allowed), len(deps))
	}
}
