package nodesim

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/google/go-cmp/cmp"
)

const macvlanConfList = `{
  "cniVersion": "1.1.0",
  "name": "macnet",
  "plugins": [{
    "type": "macvlan",
    "master": "uplink0",
    "mode": "bridge",
    "ipam": {
      "type": "host-local",
      "dataDir": %q,
      "ranges": [[{"subnet": "192.0.2.0/24", "rangeStart": %q, "rangeEnd": %q, "gateway": "192.0.2.1"}]]
    }
  }]
}`

// newMacvlanNode creates a node whose only network is a macvlan on uplink0
// with a one-address host-local range, so a second ADD on the node can only
// succeed once the first address has been released.
func newMacvlanNode(t *testing.T, sw *Switch, name, binDir, addr string) *Node {
	t.Helper()
	n := NewNode(t, sw, name, NodeOptions{BinDirs: []string{binDir}})
	conf := fmt.Sprintf(macvlanConfList, n.StateDir, addr, addr)
	if err := n.WriteConfFile("10-macnet.conflist", conf); err != nil {
		t.Fatal(err)
	}
	return n
}

// mustRunPod runs a pod without a Pod object and fails the test on error.
func mustRunPod(ctx context.Context, t *testing.T, n *Node, name string) *Pod {
	t.Helper()
	p, err := n.RunPod(ctx, t, PodSpec{Name: name, SkipPodObject: true})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// wantAddr checks the pod's eth0 address both in the CNI result and in the
// namespace.
func wantAddr(t *testing.T, p *Pod, want string) {
	t.Helper()
	res, err := current.NewResultFromResult(p.Result)
	if err != nil {
		t.Fatalf("pod %s: convert result: %v", p.Name, err)
	}
	if len(res.IPs) != 1 || res.IPs[0].Address.String() != want {
		t.Errorf("pod %s: result IPs = %v, want [%s]", p.Name, res.IPs, want)
	}
	got, err := p.Addrs("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]netip.Prefix{netip.MustParsePrefix(want)}, got,
		cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("pod %s: eth0 addresses (-want +got):\n%s", p.Name, diff)
	}
}

func TestMacvlanPodsAcrossNodes(t *testing.T) {
	binDir := requirePlugins(t, "macvlan", "host-local")
	var created namespaces
	t.Run("scenario", func(t *testing.T) { macvlanScenario(t, binDir, &created) })
	created.assertGone(t)
}

func macvlanScenario(t *testing.T, binDir string, created *namespaces) {
	ctx := t.Context()
	sw := NewSwitch(t)
	gw := sw.AddHost(t, "gw", "192.0.2.1/24")
	nodeA := newMacvlanNode(t, sw, "node-a", binDir, "192.0.2.10")
	nodeB := newMacvlanNode(t, sw, "node-b", binDir, "192.0.2.20")
	created.add(sw.NetNSName, gw.NetNSName, nodeA.NetNSName, nodeB.NetNSName)

	podA := mustRunPod(ctx, t, nodeA, "a")
	podB := mustRunPod(ctx, t, nodeB, "b")
	created.add(podA.NetNSName, podB.NetNSName)
	wantAddr(t, podA, "192.0.2.10/24")
	wantAddr(t, podB, "192.0.2.20/24")

	for _, c := range []struct {
		from interface{ Ping(string) error }
		to   string
	}{{podA, "192.0.2.20"}, {podB, "192.0.2.10"}, {gw, "192.0.2.10"}, {gw, "192.0.2.20"}} {
		if err := c.from.Ping(c.to); err != nil {
			t.Error(err)
		}
	}
	for _, p := range []*Pod{podA, podB} {
		if err := p.Check(ctx); err != nil {
			t.Errorf("CHECK after ADD: %v", err)
		}
	}

	reservation := filepath.Join(nodeA.StateDir, "macnet", "192.0.2.10")
	if !fileExists(reservation) {
		t.Fatalf("host-local reservation %s missing after ADD", reservation)
	}
	if err := podA.Del(ctx); err != nil {
		t.Fatal(err)
	}
	if fileExists(reservation) {
		t.Errorf("host-local reservation %s still present after DEL", reservation)
	}
	if err := gw.Ping("192.0.2.10"); err == nil {
		t.Error("192.0.2.10 still answers after DEL")
	}
	podA2 := mustRunPod(ctx, t, nodeA, "a2")
	created.add(podA2.NetNSName)
	wantAddr(t, podA2, "192.0.2.10/24")
	if err := gw.Ping("192.0.2.10"); err != nil {
		t.Error(err)
	}
	checkDetectsMissingInterface(ctx, t, podA2)
	statusAndGC(ctx, t, nodeB, podB)
}

// checkDetectsMissingInterface removes the pod's eth0 behind the plugin's
// back; CHECK must then fail with the plugin's own error.
func checkDetectsMissingInterface(ctx context.Context, t *testing.T, p *Pod) {
	t.Helper()
	if _, err := p.Exec("ip", "link", "del", "eth0"); err != nil {
		t.Fatal(err)
	}
	err := p.Check(ctx)
	if err == nil {
		t.Fatal("CHECK succeeded although eth0 is gone")
	}
	var pe *PluginError
	if !errors.As(err, &pe) || pe.Command != "CHECK" {
		t.Errorf("CHECK error %v: want a *PluginError for CHECK", err)
	}
}

// statusAndGC runs STATUS, then GC keeping p (its reservation survives),
// then GC keeping nothing (libcni DELs p, releasing the address).
func statusAndGC(ctx context.Context, t *testing.T, n *Node, p *Pod) {
	t.Helper()
	if err := n.Status(ctx); err != nil {
		t.Errorf("STATUS: %v", err)
	}
	reservation := filepath.Join(n.StateDir, "macnet", "192.0.2.20")
	if err := n.GC(ctx, []types.GCAttachment{p.Attachment()}); err != nil {
		t.Fatalf("GC: %v", err)
	}
	if !fileExists(reservation) {
		t.Errorf("GC released %s although the attachment is valid", reservation)
	}
	if err := n.GC(ctx, nil); err != nil {
		t.Fatalf("GC: %v", err)
	}
	if fileExists(reservation) {
		t.Errorf("GC kept %s although no attachment is valid", reservation)
	}
}

const bridgeConfList = `{
  "cniVersion": "1.1.0",
  "name": "brnet",
  "plugins": [{
    "type": "bridge",
    "bridge": %q,
    "isGateway": true,
    "ipam": {
      "type": "host-local",
      "dataDir": %q,
      "ranges": [[{"subnet": "203.0.113.0/24"}]],
      "routes": [{"dst": "0.0.0.0/0"}]
    }
  }]
}`

func TestBridgePodsOnOneNode(t *testing.T) {
	binDir := requirePlugins(t, "bridge", "host-local")
	var created namespaces
	t.Run("scenario", func(t *testing.T) { bridgeScenario(t, binDir, &created) })
	created.assertGone(t)
}

func bridgeScenario(t *testing.T, binDir string, created *namespaces) {
	ctx := t.Context()
	sw := NewSwitch(t)
	node := NewNode(t, sw, "node-br", NodeOptions{BinDirs: []string{binDir}})
	created.add(sw.NetNSName, node.NetNSName)
	bridge := "plxbr" + randomHex(3)
	if err := node.WriteConfFile("10-brnet.conflist", fmt.Sprintf(bridgeConfList, bridge, node.StateDir)); err != nil {
		t.Fatal(err)
	}
	pod1 := mustRunPod(ctx, t, node, "one")
	pod2 := mustRunPod(ctx, t, node, "two")
	created.add(pod1.NetNSName, pod2.NetNSName)

	addr1, addr2 := podAddr(t, pod1), podAddr(t, pod2)
	if err := pod1.Ping(addr2); err != nil {
		t.Error(err)
	}
	if err := pod2.Ping(addr1); err != nil {
		t.Error(err)
	}
	routes, err := pod1.DefaultRoutes(4)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"eth0": "203.0.113.1"}, routes); diff != "" {
		t.Errorf("IPv4 default routes (-want +got):\n%s", diff)
	}
	if _, err := node.Exec("ip", "link", "show", bridge); err != nil {
		t.Errorf("bridge %s not in the node namespace: %v", bridge, err)
	}
	if _, err := run(ctx, "ip", "link", "show", bridge); err == nil {
		t.Errorf("bridge %s was created in the test's own namespace", bridge)
	}
}

// podAddr returns the single eth0 address of a pod.
func podAddr(t *testing.T, p *Pod) string {
	t.Helper()
	addrs, err := p.Addrs("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 1 || !netip.MustParsePrefix("203.0.113.0/24").Contains(addrs[0].Addr()) {
		t.Fatalf("pod %s: eth0 addresses %v, want one in 203.0.113.0/24", p.Name, addrs)
	}
	return addrs[0].Addr().String()
}
