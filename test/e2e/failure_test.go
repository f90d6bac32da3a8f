package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/plexus-cni/plexus/internal/testbed/nodesim"
)

// A delegate failing on net2 rolls back net1 and eth0: no interface, no
// address held by any host-local, no attachment record left.
func TestFailedAttachmentRollsBackEverything(t *testing.T) {
	c := newCluster(t)
	hl := hostLocalDir(t)
	good := fmt.Sprintf(`{"cniVersion":"0.4.0","name":"good","type":"macvlan","master":"uplink0",
		"ipam":{"type":"host-local","subnet":"192.0.2.0/24","dataDir":%q}}`, hl)
	bad := fmt.Sprintf(`{"cniVersion":"0.4.0","name":"bad","type":"macvlan","master":"missing0",
		"ipam":{"type":"host-local","subnet":"198.51.100.0/24","dataDir":%q}}`, hl)
	c.env.CreateNAD(t, c.ns, "good", good)
	c.env.CreateNAD(t, c.ns, "bad", bad)
	n := c.addNode("node-1", nodeOpts{})
	p, err := n.RunPod(ctx(t), t, nodesim.PodSpec{Namespace: c.ns, Annotations: nets("good,bad")})
	if err == nil {
		t.Fatal("ADD succeeded with a missing master")
	}
	for _, want := range []string{"add net2 (" + c.ns + "/bad)", "Link not found"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if got := links(t, p); !slices.Equal(got, []string{"lo"}) {
		t.Errorf("after the failed ADD the pod has %v, want only lo", got)
	}
	for _, network := range []string{"good", "bad"} {
		if held := heldAddresses(t, hl, network); len(held) > 0 {
			t.Errorf("host-local still holds %v for %s", held, network)
		}
	}
	if held := heldAddresses(t, filepath.Join(n.StateDir, "cluster-ipam"), "cluster"); len(held) > 0 {
		t.Errorf("cluster host-local still holds %v", held)
	}
	if recs, _ := filepath.Glob(filepath.Join(n.StateDir, "plexus", "attachments", "*.json")); len(recs) > 0 {
		t.Errorf("attachment records left: %v", recs)
	}
	// The runtime's DEL after a failed ADD succeeds.
	if err := p.Del(ctx(t)); err != nil {
		t.Errorf("DEL after failed ADD: %v", err)
	}
}

// DEL works with the API server stopped: everything comes from the cache.
func TestDelWithAPIServerDown(t *testing.T) {
	c := newCluster(t)
	c.env.CreateNAD(t, c.ns, "macvlan-conf", macvlanConf(t, "0.4.0", "macvlan-conf"))
	n := c.addNode("node-1", nodeOpts{})
	p, err := n.RunPod(ctx(t), t, nodesim.PodSpec{Namespace: c.ns, Annotations: nets("macvlan-conf,macvlan-conf")})
	if err != nil {
		t.Fatal(err)
	}
	restart := c.env.StopAPIServer(t)
	delErr := p.Del(ctx(t))
	restart()
	if delErr != nil {
		t.Fatalf("DEL with the API server down: %v", delErr)
	}
	if got := links(t, p); !slices.Equal(got, []string{"lo"}) {
		t.Errorf("after DEL the pod has %v", got)
	}
	if held := heldAddresses(t, hostLocalDir(t), "macvlan-conf"); len(held) > 0 {
		t.Errorf("host-local still holds %v", held)
	}
	if err := p.Del(ctx(t)); err != nil {
		t.Errorf("second DEL: %v", err)
	}
}

// DEL after the NAD was deleted tears down the conflist whole, IPAM included.
func TestDelAfterNADDeleted(t *testing.T) {
	c := newCluster(t)
	hl := hostLocalDir(t)
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"listnet","plugins":[
		{"type":"macvlan","master":"uplink0","ipam":{"type":"host-local","subnet":"198.51.100.0/24","dataDir":%q}},
		{"type":"tuning","mtu":1300}]}`, hl)
	c.env.CreateNAD(t, c.ns, "listnet", conf)
	n := c.addNode("node-1", nodeOpts{})
	p, err := n.RunPod(ctx(t), t, nodesim.PodSpec{Namespace: c.ns, Annotations: nets("listnet")})
	if err != nil {
		t.Fatal(err)
	}
	if held := heldAddresses(t, hl, "listnet"); len(held) != 1 {
		t.Fatalf("host-local holds %v, want one address", held)
	}
	c.env.DeleteNAD(t, c.ns, "listnet")
	if err := p.Del(ctx(t)); err != nil {
		t.Fatalf("DEL after NAD deletion: %v", err)
	}
	if held := heldAddresses(t, hl, "listnet"); len(held) > 0 {
		t.Fatalf("host-local still holds %v after DEL", held)
	}
}

// Cross-namespace references: allowed by default, refused under isolation
// unless the NAD's namespace is global.
func TestCrossNamespace(t *testing.T) {
	c := newCluster(t)
	other := c.env.Namespace(t, "e2e-other")
	c.env.CreateNAD(t, other, "shared", macvlanConf(t, "0.3.1", "shared"))
	ref := nets(other + "/shared")
	for _, tc := range []struct {
		name    string
		extra   map[string]any
		wantErr string
	}{
		{"no isolation", nil, ""},
		{"isolation", map[string]any{"namespaceIsolation": true}, "namespaceIsolation"},
		{"isolation with global namespace", map[string]any{"namespaceIsolation": true, "globalNamespaces": "default," + other}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := c.addNode("node", nodeOpts{extra: tc.extra})
			p, err := n.RunPod(ctx(t), t, nodesim.PodSpec{Namespace: c.ns, Annotations: ref})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !hasLink(t, p, "net1") {
					t.Fatal("no net1")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), other+"/shared") {
				t.Fatalf("err = %v, want a refusal naming %s/shared and %s", err, other, tc.wantErr)
			}
			if got := links(t, p); !slices.Equal(got, []string{"lo"}) {
				t.Fatalf("refused pod has %v", got)
			}
		})
	}
}

// CHECK looks at every attachment: a deleted net1 is reported.
func TestCheckDetectsDeletedInterface(t *testing.T) {
	c := newCluster(t)
	c.env.CreateNAD(t, c.ns, "macvlan-conf", macvlanConf(t, "0.4.0", "macvlan-conf"))
	n := c.addNode("node-1", nodeOpts{})
	p, err := n.RunPod(ctx(t), t, nodesim.PodSpec{Namespace: c.ns, Annotations: nets("macvlan-conf")})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Check(ctx(t)); err != nil {
		t.Fatalf("CHECK of a healthy pod: %v", err)
	}
	if _, err := p.Exec("ip", "link", "del", "net1"); err != nil {
		t.Fatal(err)
	}
	err = p.Check(ctx(t))
	if err == nil || !strings.Contains(err.Error(), "net1") {
		t.Fatalf("CHECK after deleting net1 = %v, want an error naming net1", err)
	}
	if err := p.Del(context.Background()); err != nil {
		t.Fatalf("DEL after net1 vanished: %v", err)
	}
}

// default-route moves the pod's default route to that attachment.
func TestDefaultRoute(t *testing.T) {
	c := newCluster(t)
	c.env.CreateNAD(t, c.ns, "macvlan-conf", macvlanConf(t, "0.4.0", "macvlan-conf"))
	n := c.addNode("node-1", nodeOpts{})
	p, err := n.RunPod(ctx(t), t, nodesim.PodSpec{Namespace: c.ns,
		Annotations: nets(`[{"name":"macvlan-conf","default-route":["192.0.2.1"]}]`)})
	if err != nil {
		t.Fatal(err)
	}
	routes, err := p.DefaultRoutes(4)
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) != 1 || routes["net1"] != "192.0.2.1" {
		t.Fatalf("IPv4 default routes = %v, want only net1 via 192.0.2.1", routes)
	}
	st := networkStatus(t, p)
	if len(st[0].Gateway) != 0 || !slices.Equal(st[1].Gateway, []string{"192.0.2.1"}) {
		t.Fatalf("status gateways: eth0 %v, net1 %v", st[0].Gateway, st[1].Gateway)
	}
}

// Requested IPs and MACs reach delegates that declare the capabilities; a
// network that does not declare them refuses the pod with a clear error.
func TestRuntimeConfigCapabilities(t *testing.T) {
	c := newCluster(t)
	c.env.CreateNAD(t, c.ns, "static-ips", `{"cniVersion":"1.0.0","name":"static-ips","plugins":[
		{"type":"macvlan","master":"uplink0","capabilities":{"ips":true},"ipam":{"type":"static"}},
		{"type":"tuning","capabilities":{"mac":true}}]}`)
	c.env.CreateNAD(t, c.ns, "macvlan-conf", macvlanConf(t, "0.4.0", "macvlan-conf"))
	n := c.addNode("node-1", nodeOpts{})
	p, err := n.RunPod(ctx(t), t, nodesim.PodSpec{Namespace: c.ns, Annotations: nets(
		`[{"name":"static-ips","ips":["192.0.2.50/24"],"mac":"02:00:5e:00:02:32"}]`)})
	if err != nil {
		t.Fatal(err)
	}
	if a := addr4(t, p, "net1"); a != "192.0.2.50" {
		t.Fatalf("net1 = %s, want the requested 192.0.2.50", a)
	}
	if mac, _ := p.MAC("net1"); mac != "02:00:5e:00:02:32" {
		t.Fatalf("net1 MAC = %s, want the requested 02:00:5e:00:02:32", mac)
	}
	_, err = n.RunPod(ctx(t), t, nodesim.PodSpec{Namespace: c.ns, Annotations: nets(
		`[{"name":"macvlan-conf","ips":["192.0.2.51/24"]}]`)})
	if err == nil || !strings.Contains(err.Error(), `capability "ips"`) {
		t.Fatalf("err = %v, want a refusal naming the ips capability", err)
	}
}
