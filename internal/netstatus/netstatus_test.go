package netstatus

import (
	"encoding/json"
	"net"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	types040 "github.com/containernetworking/cni/pkg/types/040"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/google/go-cmp/cmp"
)

func cidr(s string) net.IPNet {
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	n.IP = ip
	return *n
}

func idx(i int) *int { return &i }

func clusterResult() *current.Result {
	return &current.Result{
		CNIVersion: "1.0.0",
		Interfaces: []*current.Interface{
			{Name: "cni0", Mac: "aa:aa:aa:aa:aa:aa"},
			{Name: "vethx", Mac: "bb:bb:bb:bb:bb:bb"},
			{Name: "eth0", Mac: "02:00:00:00:00:01", Mtu: 1500, Sandbox: "/run/netns/p"},
		},
		IPs:    []*current.IPConfig{{Address: cidr("203.0.113.5/24"), Gateway: net.ParseIP("203.0.113.1"), Interface: idx(2)}},
		Routes: []*types.Route{{Dst: cidr("0.0.0.0/0"), GW: net.ParseIP("203.0.113.1")}},
	}
}

func TestBuildMatchesReferenceKeys(t *testing.T) {
	macvlan := &types040.Result{
		CNIVersion: "0.3.1",
		Interfaces: []*types040.Interface{{Name: "net1", Mac: "02:00:00:00:00:02", Sandbox: "/run/netns/p"}},
		IPs:        []*types040.IPConfig{{Version: "4", Address: cidr("192.0.2.200/24"), Interface: idx(0)}},
	}
	entries, err := Build([]Source{
		{Name: "cbr0", IfName: "eth0", Default: true, Result: clusterResult()},
		{Name: "default/macvlan-conf", IfName: "net1", Result: macvlan},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(entries)
	want := `[{"name":"cbr0","interface":"eth0","ips":["203.0.113.5"],"mac":"02:00:00:00:00:01","mtu":1500,"default":true,"dns":{},"gateway":["203.0.113.1"]},` +
		`{"name":"default/macvlan-conf","interface":"net1","ips":["192.0.2.200"],"mac":"02:00:00:00:00:02","dns":{}}]`
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Fatalf("network-status (-want +got):\n%s", diff)
	}
}

func TestBuildWithoutSandboxInterface(t *testing.T) {
	res := &current.Result{CNIVersion: "1.0.0", IPs: []*current.IPConfig{{Address: cidr("198.51.100.7/24")}}}
	entries, err := Build([]Source{{Name: "ns/x", IfName: "net3", Result: res}})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Interface != "net3" || entries[0].IPs[0] != "198.51.100.7" {
		t.Fatalf("entries = %+v", entries)
	}
}

func TestMoveDefaultRoute(t *testing.T) {
	net1 := &current.Result{CNIVersion: "1.0.0",
		IPs: []*current.IPConfig{{Address: cidr("192.0.2.10/24"), Gateway: net.ParseIP("192.0.2.1")}}}
	sources := []Source{
		{Name: "cbr0", IfName: "eth0", Default: true, Result: clusterResult()},
		{Name: "ns/a", IfName: "net1", Result: net1},
	}
	gws, err := MoveDefaultRoute(sources, 1, nil) // "default-route": []
	if err != nil {
		t.Fatal(err)
	}
	if len(gws) != 1 || !gws[0].Equal(net.ParseIP("192.0.2.1")) {
		t.Fatalf("gateways = %v", gws)
	}
	entries, err := Build(sources)
	if err != nil {
		t.Fatal(err)
	}
	if entries[0].Gateway != nil || !cmp.Equal(entries[1].Gateway, []string{"192.0.2.1"}) {
		t.Fatalf("gateways after move: eth0 %v, net1 %v", entries[0].Gateway, entries[1].Gateway)
	}
	// An explicit IPv6 gateway leaves the IPv4 default route where it is.
	sources[0].Result = clusterResult()
	if _, err := MoveDefaultRoute(sources, 1, []net.IP{net.ParseIP("2001:db8::1")}); err != nil {
		t.Fatal(err)
	}
	entries, _ = Build(sources)
	if !cmp.Equal(entries[0].Gateway, []string{"203.0.113.1"}) {
		t.Fatalf("eth0 lost its IPv4 default route: %v", entries[0].Gateway)
	}
	noGW := []Source{{Name: "ns/b", IfName: "net1", Result: &current.Result{CNIVersion: "1.0.0"}}}
	if _, err := MoveDefaultRoute(noGW, 0, nil); err == nil {
		t.Fatal("want an error for default-route [] without a gateway")
	}
}

func TestGatewayFallsBackToTheAddressGateway(t *testing.T) {
	res := clusterResult()
	res.Routes = []*types.Route{{Dst: cidr("0.0.0.0/0")}} // no "gw"
	entries, err := Build([]Source{{Name: "cbr0", IfName: "eth0", Default: true, Result: res}})
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(entries[0].Gateway, []string{"203.0.113.1"}) {
		t.Fatalf("gateway = %v, want the address's gateway 203.0.113.1", entries[0].Gateway)
	}
}
