// Package e2e runs the plexus meta-plugin end to end: a real kube-apiserver
// and etcd (the test bed), the reference CNI plugins, and simulated nodes and
// pods made of network namespaces, with CNI invoked through libcni exactly as
// a container runtime does.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-cni/plexus/internal/netstatus"
	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/internal/testbed/nodesim"
	"github.com/plexus-cni/plexus/pkg/netselect"
)

// cluster is one test's world: the API, a switch, and a namespace.
type cluster struct {
	t   *testing.T
	env *testbed.Env
	sw  *nodesim.Switch
	ns  string
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	testbed.RequireRoot(t)
	env := testbed.Require(t)
	for _, bin := range []string{
		filepath.Join(testbed.Root(), "bin", "plexus"),
		filepath.Join(testbed.CNIBinDir(), "macvlan"),
		filepath.Join(testbed.CNIBinDir(), "bridge"),
		filepath.Join(testbed.CNIBinDir(), "host-local"),
	} {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("%s is missing: run `make build testbed` first", bin)
		}
	}
	return &cluster{t: t, env: env, sw: nodesim.NewSwitch(t), ns: env.Namespace(t, "e2e")}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return c
}

// nodeOpts shape the plexus configuration of one node.
type nodeOpts struct {
	index      int               // selects the node's cluster-network address range
	cniVersion string            // plexus config's cniVersion (default 1.0.0)
	extra      map[string]any    // extra plexus keys
	confFiles  map[string]string // files for plexus's confDir
}

// addNode makes a node whose conf dir holds 00-plexus.conflist; the cluster
// network (bridge cni0 + host-local in 203.0.113.0/24) is a file elsewhere.
func (c *cluster) addNode(name string, o nodeOpts) *nodesim.Node {
	c.t.Helper()
	n := nodesim.NewNode(c.t, c.sw, name, nodesim.NodeOptions{
		BinDirs: []string{filepath.Join(testbed.Root(), "bin"), testbed.CNIBinDir()},
		Client:  c.env.Client,
		Forward: []string{c.env.APIAddr()},
	})
	netd := mustDir(c.t, n.StateDir, "cluster.d")
	confDir := mustDir(c.t, n.StateDir, "multus.d")
	for f, content := range o.confFiles {
		mustWrite(c.t, filepath.Join(confDir, f), content)
	}
	start := 10 + o.index*100
	cluster := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"cluster","plugins":[{"type":"bridge","bridge":"cni0","isGateway":true,
		"ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":"203.0.113.0/24","rangeStart":"203.0.113.%d","rangeEnd":"203.0.113.%d","gateway":"203.0.113.1"}]],
		"routes":[{"dst":"0.0.0.0/0"}]}}]}`, filepath.Join(n.StateDir, "cluster-ipam"), start, start+80)
	clusterPath := filepath.Join(netd, "10-cluster.conflist")
	mustWrite(c.t, clusterPath, cluster)
	v := o.cniVersion
	if v == "" {
		v = "1.0.0"
	}
	conf := map[string]any{
		"cniVersion": v, "name": "plexus-network", "type": "plexus",
		"kubeconfig":     c.env.Kubeconfig,
		"clusterNetwork": clusterPath,
		"confDir":        confDir,
		"cniDir":         filepath.Join(n.StateDir, "plexus"),
		"binDir":         testbed.CNIBinDir(),
		"logFile":        filepath.Join(n.StateDir, "plexus.log"),
		"logLevel":       "debug",
		"logToStderr":    false,
	}
	for k, val := range o.extra {
		conf[k] = val
	}
	b, _ := json.Marshal(conf)
	if err := n.WriteConfFile("00-plexus.conf", string(b)); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() {
		if c.t.Failed() || os.Getenv("PLEXUS_E2E_LOGS") == "1" {
			if log, err := os.ReadFile(filepath.Join(n.StateDir, "plexus.log")); err == nil {
				c.t.Logf("plexus log of %s:\n%s", name, log)
			}
		}
	})
	return n
}

func mustDir(t *testing.T, parts ...string) string {
	t.Helper()
	d := filepath.Join(parts...)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// macvlanConf is S1's NAD config with TEST-NET addresses, the node uplink
// as master and a host-local dataDir private to the test.
func macvlanConf(t *testing.T, version, name string) string {
	return fmt.Sprintf(`{"cniVersion":%q,"name":%q,"type":"macvlan","master":"uplink0","mode":"bridge",
		"ipam":{"type":"host-local","subnet":"192.0.2.0/24","rangeStart":"192.0.2.200","rangeEnd":"192.0.2.216",
		"routes":[{"dst":"0.0.0.0/0"}],"gateway":"192.0.2.1","dataDir":%q}}`, version, name, hostLocalDir(t))
}

// hostLocalDir is shared by every node of the test, as one disk would be:
// host-local then never hands one address out twice across the test's nodes.
func hostLocalDir(t *testing.T) string {
	dir := filepath.Join(os.TempDir(), "plexus-e2e-hl-"+sanitize(t.Name()))
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func sanitize(s string) string {
	return strings.NewReplacer("/", "_", " ", "_").Replace(s)
}

// heldAddresses lists the addresses host-local holds in dir for network.
func heldAddresses(t *testing.T, dir, network string) []string {
	t.Helper()
	return testbed.HostLocalLeases(t, filepath.Join(dir, network))
}

// networkStatus reads the pod's network-status annotation.
func networkStatus(t *testing.T, p *nodesim.Pod) []netstatus.Entry {
	t.Helper()
	obj, err := p.Object(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	raw, ok := obj.Annotations[netselect.NetworkStatusAnnotation]
	if !ok {
		t.Fatalf("pod %s/%s has no %s annotation", p.Namespace, p.Name, netselect.NetworkStatusAnnotation)
	}
	var entries []netstatus.Entry
	if err := json.Unmarshal([]byte(raw), &entries); err != nil {
		t.Fatalf("network-status %q: %v", raw, err)
	}
	return entries
}

// links returns the pod's interface names.
func links(t *testing.T, p *nodesim.Pod) []string {
	t.Helper()
	l, err := p.Links()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(l)
	return l
}

func hasLink(t *testing.T, p *nodesim.Pod, name string) bool {
	for _, l := range links(t, p) {
		if l == name {
			return true
		}
	}
	return false
}

// addr4 returns the single IPv4 address of ifname in the pod.
func addr4(t *testing.T, p *nodesim.Pod, ifname string) string {
	t.Helper()
	addrs, err := p.Addrs(ifname)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if a.Addr().Is4() {
			return a.Addr().String()
		}
	}
	t.Fatalf("%s has no IPv4 address: %v", ifname, addrs)
	return ""
}

// events lists the reasons and messages of the pod's events.
func events(t *testing.T, c *cluster, p *nodesim.Pod) []string {
	t.Helper()
	list, err := c.env.Client.CoreV1().Events(p.Namespace).List(context.Background(), metav1.ListOptions{
		FieldSelector: "involvedObject.name=" + p.Name,
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		out = append(out, e.Reason+": "+e.Message)
	}
	return out
}
