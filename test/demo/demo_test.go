// Package demo is `make demo`: a local control plane, two simulated nodes on
// one switch, three pods with a macvlan net1 (S1 with TEST-NET addresses),
// pings across nodes, and each pod's interfaces and network-status.
// It runs only when PLEXUS_DEMO=1 (hack/demo.sh sets it).
package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/plexus-cni/plexus/internal/netstatus"
	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/internal/testbed/nodesim"
	"github.com/plexus-cni/plexus/pkg/netselect"
)

// S1's NAD as published, with a TEST-NET subnet and the node's uplink as master.
const s1NAD = `{"cniVersion":"0.3.0","type":"macvlan","master":"uplink0","mode":"bridge",
 "ipam":{"type":"host-local","subnet":"192.0.2.0/24","rangeStart":"192.0.2.200","rangeEnd":"192.0.2.216",
 "routes":[{"dst":"0.0.0.0/0"}],"gateway":"192.0.2.1"}}`

func say(format string, args ...any) { fmt.Printf(format+"\n", args...) }

func TestDemo(t *testing.T) {
	if os.Getenv("PLEXUS_DEMO") != "1" {
		t.Skip("the demo runs with PLEXUS_DEMO=1 (make demo)")
	}
	testbed.RequireRoot(t)
	env := testbed.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	ns := env.Namespace(t, "demo")
	say("\n== plexus demo: namespace %s on the local control plane (%s)", ns, env.RESTConfig.Host)
	env.CreateNAD(t, ns, "macvlan-conf", s1NAD)
	say("NetworkAttachmentDefinition %s/macvlan-conf (S1): macvlan on uplink0, host-local 192.0.2.200-216", ns)
	// host-local keeps its leases on the node's disk; the simulated nodes
	// share this machine's, so the demo removes the network's directory.
	t.Cleanup(func() { os.RemoveAll("/var/lib/cni/networks/macvlan-conf") })

	sw := nodesim.NewSwitch(t)
	router := sw.AddHost(t, "gateway", "192.0.2.1/24")
	nodes := []*nodesim.Node{newNode(t, env, sw, "node-1", 0), newNode(t, env, sw, "node-2", 1)}
	say("nodes node-1 and node-2 share switch %s; the gateway 192.0.2.1 sits on it too", sw.Bridge)

	var pods []*nodesim.Pod
	for i, name := range []string{"samplepod-a", "samplepod-b", "samplepod-c"} {
		n := nodes[i%2]
		p, err := n.RunPod(ctx, t, nodesim.PodSpec{Namespace: ns, Name: name,
			Annotations: map[string]string{netselect.NetworksAnnotation: "macvlan-conf"}})
		if err != nil {
			t.Fatal(err)
		}
		say("pod %-12s on %s: CNI ADD in %v", name, n.Name, p.AddDuration.Round(time.Millisecond))
		pods = append(pods, p)
	}

	say("\n== pings between net1 addresses")
	for _, from := range pods {
		for _, to := range pods {
			if from == to {
				continue
			}
			dst := net1Addr(t, to)
			err := from.Ping(dst)
			say("%-12s (%s) -> %-12s %-15s  %s", from.Name, from.Node.Name, to.Name, dst, verdict(err))
			if err != nil {
				t.Errorf("ping %s -> %s: %v", from.Name, dst, err)
			}
		}
		if err := router.Ping(net1Addr(t, from)); err != nil {
			t.Errorf("gateway cannot reach %s: %v", from.Name, err)
		}
	}
	say("gateway 192.0.2.1 (outside the cluster) reaches every pod's net1 directly")

	say("\n== interfaces and network-status")
	printTable(t, ctx, pods)
	raw := statusOf(t, ctx, pods[0])
	say("\nk8s.v1.cni.cncf.io/network-status of %s:\n%s", pods[0].Name, raw)

	say("\n== teardown")
	for _, p := range pods {
		if err := p.Remove(ctx); err != nil {
			t.Errorf("remove %s: %v", p.Name, err)
		}
	}
	left, _ := filepath.Glob("/var/lib/cni/networks/macvlan-conf/192.0.2.*")
	say("pods deleted; host-local leases left: %d", len(left))
	if len(left) != 0 {
		t.Errorf("addresses still held after DEL: %v", left)
	}
}

func newNode(t *testing.T, env *testbed.Env, sw *nodesim.Switch, name string, idx int) *nodesim.Node {
	n := nodesim.NewNode(t, sw, name, nodesim.NodeOptions{
		BinDirs: []string{filepath.Join(testbed.Root(), "bin"), testbed.CNIBinDir()},
		Client:  env.Client,
		Forward: []string{env.APIAddr()},
	})
	start := 10 + idx*100
	cluster := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"cluster","plugins":[{"type":"bridge","bridge":"cni0","isGateway":true,
		"ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":"203.0.113.0/24","rangeStart":"203.0.113.%d","rangeEnd":"203.0.113.%d"}]],
		"routes":[{"dst":"0.0.0.0/0"}]}}]}`, filepath.Join(n.StateDir, "ipam"), start, start+80)
	clusterPath := filepath.Join(n.StateDir, "10-cluster.conflist")
	if err := os.WriteFile(clusterPath, []byte(cluster), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"plexus-network","type":"plexus","kubeconfig":%q,
		"clusterNetwork":%q,"cniDir":%q,"binDir":%q}`,
		env.Kubeconfig, clusterPath, filepath.Join(n.StateDir, "plexus"), testbed.CNIBinDir())
	if err := n.WriteConfFile("00-plexus.conf", conf); err != nil {
		t.Fatal(err)
	}
	return n
}

func net1Addr(t *testing.T, p *nodesim.Pod) string {
	addrs, err := p.Addrs("net1")
	if err != nil || len(addrs) == 0 {
		t.Fatalf("%s has no net1 address: %v", p.Name, err)
	}
	return addrs[0].Addr().String()
}

func verdict(err error) string {
	if err != nil {
		return "FAIL"
	}
	return "ok"
}

func statusOf(t *testing.T, ctx context.Context, p *nodesim.Pod) string {
	obj, err := p.Object(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return obj.Annotations[netselect.NetworkStatusAnnotation]
}

func printTable(t *testing.T, ctx context.Context, pods []*nodesim.Pod) {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "POD\tNODE\tINTERFACE\tNETWORK\tIPS\tMAC\tDEFAULT")
	for _, p := range pods {
		var entries []netstatus.Entry
		if err := json.Unmarshal([]byte(statusOf(t, ctx, p)), &entries); err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%v\n", p.Name, p.Node.Name, e.Interface, e.Name,
				strings.Join(e.IPs, ","), e.Mac, e.Default)
		}
	}
	w.Flush()
}
