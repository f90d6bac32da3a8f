package e2e

import (
	"fmt"
	"slices"
	"testing"

	"github.com/plexus-cni/plexus/internal/testbed/nodesim"
)

// A macvlan with "linkInContainer": true whose master is net1 needs net1 to
// exist in the pod when its ADD starts: with attachConcurrency 4 plexus
// still attaches it after net1, every time.
func TestLinkInContainerAttachesAfterItsMaster(t *testing.T) {
	c := newCluster(t)
	c.env.CreateNAD(t, c.ns, "lower", macvlanConf(t, "1.0.0", "lower"))
	c.env.CreateNAD(t, c.ns, "upper", fmt.Sprintf(`{"cniVersion":"1.0.0","name":"upper","type":"macvlan",
		"linkInContainer":true,"master":"net1","mode":"bridge",
		"ipam":{"type":"host-local","subnet":"198.51.100.0/24","dataDir":%q}}`, hostLocalDir(t)))
	n := c.addNode("node-1", nodeOpts{extra: map[string]any{"attachConcurrency": 4}})
	for i := range 10 {
		p, err := n.RunPod(ctx(t), t, nodesim.PodSpec{Namespace: c.ns, Name: fmt.Sprintf("stacked-%d", i), Annotations: nets("lower,upper")})
		if err != nil {
			t.Fatalf("pod %d: %v", i, err)
		}
		if got := links(t, p); !slices.Equal(got, []string{"eth0", "lo", "net1", "net2"}) {
			t.Fatalf("pod %d: interfaces = %v, want eth0 lo net1 net2", i, got)
		}
		checkStackedOnNet1(t, p)
		st := networkStatus(t, p)
		if len(st) != 3 || st[1].Interface != "net1" || st[2].Interface != "net2" || st[2].Name != c.ns+"/upper" {
			t.Fatalf("pod %d: network-status = %+v", i, st)
		}
		if err := p.Remove(ctx(t)); err != nil {
			t.Fatalf("pod %d: DEL: %v", i, err)
		}
	}
}

// checkStackedOnNet1 checks that net2 is a macvlan made on net1. The kernel
// puts a macvlan whose master is a macvlan on that master's own lower
// device, so net2 shares net1's lower device (the node's uplink) instead of
// naming net1.
func checkStackedOnNet1(t *testing.T, p *nodesim.Pod) {
	t.Helper()
	lower, err := p.Link("net1")
	if err != nil {
		t.Fatal(err)
	}
	upper, err := p.Link("net2")
	if err != nil {
		t.Fatal(err)
	}
	if lower.Kind != "macvlan" || upper.Kind != "macvlan" {
		t.Fatalf("net1 is %q and net2 is %q, want two macvlans", lower.Kind, upper.Kind)
	}
	if upper.LowerIndex == 0 || upper.LowerIndex != lower.LowerIndex || upper.LowerNetNSID == nil ||
		lower.LowerNetNSID == nil || *upper.LowerNetNSID != *lower.LowerNetNSID {
		t.Fatalf("net2's lower device (%+v) is not net1's (%+v)", upper, lower)
	}
}
