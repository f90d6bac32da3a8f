package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/plexus-cni/plexus/internal/testbed/nodesim"
	"github.com/plexus-cni/plexus/pkg/netselect"
)

func nets(v string) map[string]string { return map[string]string{netselect.NetworksAnnotation: v} }

// S1: a macvlan second interface with host-local IPAM, reachable from a host
// outside the cluster on the same L2 segment; network-status has two entries.
func TestS1MacvlanSecondInterface(t *testing.T) {
	c := newCluster(t)
	c.env.CreateNAD(t, c.ns, "macvlan-conf", macvlanConf(t, "0.3.0", ""))
	outside := c.sw.AddHost(t, "outside", "192.0.2.1/24")
	n1 := c.addNode("node-1", nodeOpts{index: 0})
	n2 := c.addNode("node-2", nodeOpts{index: 1})

	p1, err := n1.RunPod(ctx(t), t, nodesim.PodSpec{Namespace: c.ns, Name: "samplepod", Annotations: nets("macvlan-conf")})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := n2.RunPod(ctx(t), t, nodesim.PodSpec{Namespace: c.ns, Name: "samplepod-2", Annotations: nets("macvlan-conf")})
	if err != nil {
		t.Fatal(err)
	}
	if got := links(t, p1); !slices.Equal(got, []string{"eth0", "lo", "net1"}) {
		t.Fatalf("pod interfaces = %v, want eth0 lo net1", got)
	}
	a1, a2 := addr4(t, p1, "net1"), addr4(t, p2, "net1")
	for _, a := range []string{a1, a2} {
		if !strings.HasPrefix(a, "192.0.2.2") || a > "192.0.2.216" || a < "192.0.2.200" {
			t.Fatalf("net1 address %s is outside .200-.216", a)
		}
	}
	if err := outside.Ping(a1); err != nil {
		t.Fatalf("host outside the cluster cannot reach net1 %s: %v", a1, err)
	}
	if err := p1.Ping(a2); err != nil {
		t.Fatalf("net1 %s cannot reach net1 %s on the other node: %v", a1, a2, err)
	}

	st := networkStatus(t, p1)
	if len(st) != 2 {
		t.Fatalf("network-status has %d entries, want 2: %+v", len(st), st)
	}
	if st[0].Name != "cluster" || st[0].Interface != "eth0" || !st[0].Default || len(st[0].IPs) != 1 {
		t.Errorf("cluster entry = %+v", st[0])
	}
	mac, _ := p1.MAC("net1")
	want := c.ns + "/macvlan-conf"
	if st[1].Name != want || st[1].Interface != "net1" || st[1].Default || !slices.Equal(st[1].IPs, []string{a1}) || st[1].Mac != mac {
		t.Errorf("net1 entry = %+v, want name %s, ips [%s], mac %s", st[1], want, a1, mac)
	}
	ev := strings.Join(events(t, c, p1), "\n")
	for _, w := range []string{"AddedInterface: Add eth0", "AddedInterface: Add net1 [" + a1 + "] from " + want} {
		if !strings.Contains(ev, w) {
			t.Errorf("events %q lack %q", ev, w)
		}
	}
	if err := p1.Check(ctx(t)); err != nil {
		t.Errorf("CHECK after ADD: %v", err)
	}
}

// S2: the same network twice gives net1 and net2 and two status entries.
func TestS2SameNetworkTwice(t *testing.T) {
	c := newCluster(t)
	c.env.CreateNAD(t, c.ns, "macvlan-conf", macvlanConf(t, "0.3.1", "macvlan-conf"))
	n := c.addNode("node-1", nodeOpts{})
	p, err := n.RunPod(ctx(t), t, nodesim.PodSpec{Namespace: c.ns, Annotations: nets("macvlan-conf,macvlan-conf")})
	if err != nil {
		t.Fatal(err)
	}
	if got := links(t, p); !slices.Equal(got, []string{"eth0", "lo", "net1", "net2"}) {
		t.Fatalf("interfaces = %v", got)
	}
	st := networkStatus(t, p)
	if len(st) != 3 || st[1].Interface != "net1" || st[2].Interface != "net2" || st[1].IPs[0] == st[2].IPs[0] {
		t.Fatalf("network-status = %+v", st)
	}
}

// Every CNI version plexus's own config may use, with delegates at theirs.
func TestCNIVersions(t *testing.T) {
	c := newCluster(t)
	c.env.CreateNAD(t, c.ns, "macvlan-conf", macvlanConf(t, "0.3.1", "macvlan-conf"))
	for i, v := range []string{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"} {
		t.Run(v, func(t *testing.T) {
			n := c.addNode(fmt.Sprintf("node-%d", i), nodeOpts{index: i % 2, cniVersion: v})
			p, err := n.RunPod(ctx(t), t, nodesim.PodSpec{Namespace: c.ns, Annotations: nets("macvlan-conf")})
			if err != nil {
				t.Fatal(err)
			}
			if p.Result.Version() != v {
				t.Errorf("result version = %s, want %s", p.Result.Version(), v)
			}
			if !hasLink(t, p, "net1") {
				t.Fatal("no net1")
			}
			if v >= "0.4.0" {
				if err := p.Check(ctx(t)); err != nil {
					t.Errorf("CHECK: %v", err)
				}
			}
			if err := p.Remove(ctx(t)); err != nil {
				t.Fatalf("DEL: %v", err)
			}
		})
	}
}

// A conflist NAD: macvlan then tuning, both applied to net1.
func TestConflistNAD(t *testing.T) {
	c := newCluster(t)
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"tuned","plugins":[
		{"type":"macvlan","master":"uplink0","mode":"bridge","ipam":{"type":"host-local","subnet":"198.51.100.0/24","dataDir":%q}},
		{"type":"tuning","mtu":1280,"sysctl":{"net.ipv4.conf.net1.arp_ignore":"1"}}]}`, hostLocalDir(t))
	c.env.CreateNAD(t, c.ns, "tuned", conf)
	n := c.addNode("node-1", nodeOpts{})
	p, err := n.RunPod(ctx(t), t, nodesim.PodSpec{Namespace: c.ns, Annotations: nets("tuned")})
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Exec("cat", "/sys/class/net/net1/mtu")
	if err != nil || strings.TrimSpace(out) != "1280" {
		t.Fatalf("net1 mtu = %q (%v), want 1280 from the tuning plugin", out, err)
	}
	if st := networkStatus(t, p); len(st) != 2 || st[1].Interface != "net1" {
		t.Fatalf("network-status = %+v, want eth0 and net1", st)
	}
}

// S5: the default-network annotation replaces eth0, from a NAD and from an
// on-disk configuration (a NAD with an empty spec names a file in confDir).
func TestS5DefaultNetworkOverride(t *testing.T) {
	c := newCluster(t)
	c.env.CreateNAD(t, c.ns, "macvlan-standalone", macvlanConf(t, "0.3.1", "macvlan-standalone"))
	c.env.CreateNAD(t, c.ns, "ondisk", "")
	ondisk := fmt.Sprintf(`{"cniVersion":"0.4.0","name":"ondisk","type":"macvlan","master":"uplink0",
		"ipam":{"type":"host-local","subnet":"198.51.100.0/24","dataDir":%q}}`, hostLocalDir(t))
	n := c.addNode("node-1", nodeOpts{
		extra:     map[string]any{"multusNamespace": c.ns},
		confFiles: map[string]string{"ondisk.conf": ondisk},
	})
	for _, tc := range []struct{ name, annotation, prefix string }{
		{"nad", "macvlan-standalone", "192.0.2."},
		{"on-disk", c.ns + "/ondisk", "198.51.100."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := n.RunPod(ctx(t), t, nodesim.PodSpec{Namespace: c.ns, Annotations: map[string]string{
				netselect.DefaultNetworkAnnotation: tc.annotation,
				netselect.NetworksAnnotation:       c.ns + "/macvlan-standalone",
			}})
			if err != nil {
				t.Fatal(err)
			}
			if a := addr4(t, p, "eth0"); !strings.HasPrefix(a, tc.prefix) {
				t.Fatalf("eth0 = %s, want an address in %s*: the default network was not replaced", a, tc.prefix)
			}
			if a := addr4(t, p, "net1"); !strings.HasPrefix(a, "192.0.2.") {
				t.Fatalf("net1 = %s", a)
			}
			st := networkStatus(t, p)
			if !st[0].Default || !strings.HasSuffix(st[0].Name, "/"+strings.TrimPrefix(tc.annotation, c.ns+"/")) {
				t.Fatalf("status[0] = %+v", st[0])
			}
			// plexus in process starts the node's cluster network while it
			// reads the pod; the pod replaced it, so it was undone: its
			// host-local holds no address.
			if held := heldAddresses(t, filepath.Join(n.StateDir, "cluster-ipam"), "cluster"); len(held) > 0 {
				t.Errorf("the replaced cluster network's host-local still holds %v", held)
			}
		})
	}
}
