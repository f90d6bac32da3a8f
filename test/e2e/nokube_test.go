package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/internal/testbed/nodesim"
)

// Without a kubeconfig plexus attaches its configured delegates only (the
// Multus "delegates" form): delegates[0] is eth0, the rest net1…; GC tears
// down sandboxes the runtime no longer lists.
func TestWithoutKubernetesDelegatesAndGC(t *testing.T) {
	testbed.RequireRoot(t)
	if _, err := os.Stat(filepath.Join(testbed.Root(), "bin", "plexus")); err != nil {
		t.Fatalf("bin/plexus is missing: run `make build`: %v", err)
	}
	sw := nodesim.NewSwitch(t)
	n := nodesim.NewNode(t, sw, "solo", nodesim.NodeOptions{
		BinDirs: []string{filepath.Join(testbed.Root(), "bin"), testbed.CNIBinDir()},
	})
	hl := filepath.Join(n.StateDir, "ipam")
	conf := map[string]any{
		"cniVersion": "1.1.0", "name": "plexus-network", "type": "plexus",
		"cniDir": filepath.Join(n.StateDir, "plexus"), "binDir": testbed.CNIBinDir(),
		"delegates": []any{
			json.RawMessage(fmt.Sprintf(`{"cniVersion":"1.1.0","name":"cluster","type":"bridge","bridge":"cni0","isGateway":true,
				"ipam":{"type":"host-local","subnet":"203.0.113.0/24","dataDir":%q}}`, hl)),
			json.RawMessage(fmt.Sprintf(`{"cniVersion":"1.1.0","name":"side","type":"macvlan","master":"uplink0",
				"ipam":{"type":"host-local","subnet":"192.0.2.0/24","dataDir":%q}}`, hl)),
		},
	}
	b, _ := json.Marshal(conf)
	if err := n.WriteConfFile("00-plexus.conf", string(b)); err != nil {
		t.Fatal(err)
	}
	keep, err := n.RunPod(ctx(t), t, nodesim.PodSpec{Namespace: "default", Name: "keep"})
	if err != nil {
		t.Fatal(err)
	}
	gone, err := n.RunPod(ctx(t), t, nodesim.PodSpec{Namespace: "default", Name: "gone"})
	if err != nil {
		t.Fatal(err)
	}
	if got := links(t, keep); !slices.Equal(got, []string{"eth0", "lo", "net1"}) {
		t.Fatalf("interfaces = %v, want eth0 lo net1", got)
	}
	if err := n.Status(ctx(t)); err != nil {
		t.Fatalf("STATUS: %v", err)
	}
	if err := n.GC(ctx(t), []types.GCAttachment{keep.Attachment()}); err != nil {
		t.Fatalf("GC: %v", err)
	}
	if got := links(t, gone); !slices.Equal(got, []string{"lo"}) {
		t.Errorf("GC left %v in the sandbox the runtime no longer lists", got)
	}
	if got := links(t, keep); !slices.Equal(got, []string{"eth0", "lo", "net1"}) {
		t.Errorf("GC touched a live sandbox: %v", got)
	}
	if held := heldAddresses(t, hl, "side"); len(held) != 1 {
		t.Errorf("host-local holds %v for side, want only keep's address", held)
	}
}
