package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/internal/testbed/nodesim"
)

// ipamNode is addNode for plexus-ipam: the node also reaches the
// addresses in forward (a private etcd), and its plexus log is kept.
func (c *cluster) ipamNode(name string, index int, forward ...string) *nodesim.Node {
	c.t.Helper()
	if _, err := os.Stat(filepath.Join(testbed.Root(), "bin", "plexus-ipam")); err != nil {
		c.t.Fatalf("plexus-ipam is missing: run `make build` first")
	}
	n := nodesim.NewNode(c.t, c.sw, name, nodesim.NodeOptions{
		BinDirs: []string{filepath.Join(testbed.Root(), "bin"), testbed.CNIBinDir()},
		Client:  c.env.Client,
		Forward: append([]string{c.env.APIAddr()}, forward...),
	})
	cluster := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"cluster","plugins":[{"type":"bridge","bridge":"cni0","isGateway":true,
		"ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":"203.0.113.0/24","rangeStart":"203.0.113.%d","rangeEnd":"203.0.113.%d"}]]}}]}`,
		filepath.Join(n.StateDir, "cluster-ipam"), 10+index*100, 90+index*100)
	clusterPath := filepath.Join(mustDir(c.t, n.StateDir, "cluster.d"), "10-cluster.conflist")
	mustWrite(c.t, clusterPath, cluster)
	conf, _ := json.Marshal(map[string]any{
		"cniVersion": "1.0.0", "name": "plexus-network", "type": "plexus", "kubeconfig": c.env.Kubeconfig,
		"clusterNetwork": clusterPath, "confDir": mustDir(c.t, n.StateDir, "multus.d"), "cniDir": filepath.Join(n.StateDir, "plexus"),
		"binDir": testbed.CNIBinDir(), "logFile": filepath.Join(n.StateDir, "plexus.log"), "logLevel": "debug", "logToStderr": false,
	})
	if err := n.WriteConfFile("00-plexus.conf", string(conf)); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() {
		if c.t.Failed() {
			for _, f := range []string{"plexus.log", "plexus-ipam.log"} {
				if log, err := os.ReadFile(filepath.Join(n.StateDir, f)); err == nil {
					c.t.Logf("%s of %s:\n%s", f, name, log)
				}
			}
		}
	})
	return n
}

// s4Conf is S4's NAD config with TEST-NET addresses and the node uplink;
// store adds the store's keys (kubernetes or etcd_host).
func s4Conf(store map[string]any) string {
	ipam := map[string]any{"type": "plexus-ipam", "range": "198.51.100.100-198.51.100.110/24", "gateway": "198.51.100.1",
		"log_level": "debug"}
	for k, v := range store {
		ipam[k] = v
	}
	b, _ := json.Marshal(map[string]any{"cniVersion": "0.3.0", "name": "whereaboutsexample", "type": "macvlan",
		"master": nodesim.DefaultUplink, "mode": "bridge", "ipam": ipam})
	return string(b)
}

// runS4 runs scenario S4 through plexus on two nodes: five pods created
// one after another get .100 to .104 (/24) on net1, three more .105 to
// .107, a deleted pod's address goes to the next pod, and net1 addresses
// reach each other across nodes.
func runS4(t *testing.T, c *cluster, nodes []*nodesim.Node) {
	var pods []*nodesim.Pod
	run := func(i int) *nodesim.Pod {
		t.Helper()
		p, err := nodes[i%2].RunPod(ctx(t), t, nodesim.PodSpec{Namespace: c.ns, Name: fmt.Sprintf("s4-%d", i), Annotations: nets("macvlan-conf")})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for i := 0; i < 8; i++ {
		p := run(i)
		pods = append(pods, p)
		want := fmt.Sprintf("198.51.100.%d", 100+i)
		if got := addr4(t, p, "net1"); got != want {
			t.Fatalf("pod %d on %s: net1 %s, want %s", i, p.Node.Name, got, want)
		}
		if addrs, _ := p.Addrs("net1"); len(addrs) != 1 || addrs[0].Bits() != 24 {
			t.Errorf("pod %d: net1 addresses %v, want one /24", i, addrs)
		}
	}
	if err := pods[0].Ping(addr4(t, pods[1], "net1")); err != nil {
		t.Errorf("net1 of %s cannot reach net1 of %s: %v", pods[0].Node.Name, pods[1].Node.Name, err)
	}
	if err := pods[7].Ping(addr4(t, pods[2], "net1")); err != nil {
		t.Errorf("net1 of %s cannot reach net1 of %s: %v", pods[7].Node.Name, pods[2].Node.Name, err)
	}
	if err := pods[2].Remove(ctx(t)); err != nil {
		t.Fatalf("deleting pod s4-2: %v", err)
	}
	if got := addr4(t, run(8), "net1"); got != "198.51.100.102" {
		t.Errorf("after deleting the pod holding .102, the next pod got %s", got)
	}
	if got := addr4(t, run(9), "net1"); got != "198.51.100.108" {
		t.Errorf("then the next pod got %s, want .108", got)
	}
}

// S4 with the Kubernetes store (no etcd_host): the plugin reads the test
// bed's kubeconfig; the objects live in the test's namespace.
func TestS4IPAMKubernetes(t *testing.T) {
	c := newCluster(t)
	c.env.CreateNAD(t, c.ns, "macvlan-conf", s4Conf(map[string]any{
		"kubernetes": map[string]any{"kubeconfig": c.env.Kubeconfig, "namespace": c.ns}}))
	runS4(t, c, []*nodesim.Node{c.ipamNode("node-1", 0), c.ipamNode("node-2", 1)})
}

// S4 with etcd_host: a private etcd made reachable inside the nodes, where
// the plugin runs.
func TestS4IPAMEtcd(t *testing.T) {
	c := newCluster(t)
	endpoint := testbed.StartEtcd(t)
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	c.env.CreateNAD(t, c.ns, "macvlan-conf", s4Conf(map[string]any{"etcd_host": u.Host}))
	nodes := []*nodesim.Node{c.ipamNode("node-1", 0, u.Host), c.ipamNode("node-2", 1, u.Host)}
	runS4(t, c, nodes)
}

// A sticky network: db-0 recreated on another node (a new pod UID) gets
// its address back, and a pod started meanwhile does not get it.
func TestStickyIPAMStatefulSetPod(t *testing.T) {
	c := newCluster(t)
	c.env.CreateNAD(t, c.ns, "macvlan-conf", s4Conf(map[string]any{"sticky": true,
		"kubernetes": map[string]any{"kubeconfig": c.env.Kubeconfig, "namespace": c.ns}}))
	nodes := []*nodesim.Node{c.ipamNode("node-1", 0), c.ipamNode("node-2", 1)}
	spec := func(name string) nodesim.PodSpec {
		return nodesim.PodSpec{Namespace: c.ns, Name: name, Annotations: nets("macvlan-conf")}
	}
	filler, err := nodes[0].RunPod(ctx(t), t, spec("web-a"))
	if err != nil {
		t.Fatal(err)
	}
	first, err := nodes[0].RunPod(ctx(t), t, spec("db-0"))
	if err != nil {
		t.Fatal(err)
	}
	addr := addr4(t, first, "net1")
	if err := first.Remove(ctx(t)); err != nil {
		t.Fatal(err)
	}
	other, err := nodes[1].RunPod(ctx(t), t, spec("web-b"))
	if err != nil {
		t.Fatal(err)
	}
	if got := addr4(t, other, "net1"); got == addr {
		t.Fatalf("another pod got db-0's reserved %s", addr)
	}
	again, err := nodes[1].RunPod(ctx(t), t, spec("db-0"))
	if err != nil {
		t.Fatal(err)
	}
	if got := addr4(t, again, "net1"); got != addr {
		t.Errorf("db-0 recreated on node-2 got %s, want its old %s", got, addr)
	}
	if err := again.Ping(addr4(t, filler, "net1")); err != nil {
		t.Errorf("recreated db-0 cannot reach %s: %v", addr4(t, filler, "net1"), err)
	}
}
