package dhcpd

import (
	"encoding/json"
	"testing"

	"github.com/plexus-cni/plexus/internal/cache"
)

func TestUses(t *testing.T) {
	for _, tc := range []struct {
		name, conf string
		want       bool
	}{
		{"single configuration", `{"cniVersion":"0.3.1","name":"n","type":"macvlan","ipam":{"type":"dhcp"}}`, true},
		{"list, second plugin", `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"tuning"},{"type":"bridge","ipam":{"type":"dhcp"}}]}`, true},
		{"the default socket named", `{"name":"n","type":"macvlan","ipam":{"type":"dhcp","daemonSocketPath":"/run/cni/dhcp.sock"}}`, true},
		{"another daemon's socket", `{"name":"n","type":"macvlan","ipam":{"type":"dhcp","daemonSocketPath":"/run/other.sock"}}`, false},
		{"other IPAM", `{"name":"n","type":"macvlan","ipam":{"type":"host-local","subnet":"198.51.100.0/24"}}`, false},
		{"no IPAM", `{"name":"n","type":"host-device","device":"eth1"}`, false},
		{"dhcp as the plugin type, not IPAM", `{"name":"n","type":"dhcp"}`, false},
		{"not JSON", `{"name":`, false},
		{"ipam not an object", `{"name":"n","type":"macvlan","ipam":"dhcp"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Uses([]byte(tc.conf), "nad", DefaultSocket); got != tc.want {
				t.Errorf("Uses(%s) = %v, want %v", tc.conf, got, tc.want)
			}
		})
	}
}

func TestLeasesOf(t *testing.T) {
	rec := &cache.Record{
		ContainerID: "c1", NetNS: "/var/run/netns/cni-1",
		Args: [][2]string{{"K8S_POD_NAMESPACE", "ns"}, {"K8S_POD_NAME", "p"}},
		Attachments: []cache.Attachment{
			{StatusName: "cluster", IfName: "eth0", Conflist: json.RawMessage(`{"cniVersion":"1.0.0","name":"cluster","plugins":[{"type":"bridge","ipam":{"type":"host-local"}}]}`)},
			{StatusName: "ns/dhcp-net", IfName: "net1", Conflist: json.RawMessage(`{"cniVersion":"1.0.0","name":"dhcp-net","plugins":[{"type":"macvlan","master":"eth0","ipam":{"type":"dhcp"}},{"type":"tuning"}]}`)},
		},
	}
	got := LeasesOf(rec, DefaultSocket)
	if len(got) != 1 {
		t.Fatalf("LeasesOf = %+v, want the one lease of net1", got)
	}
	l := got[0]
	if l.ContainerID != "c1" || l.NetNS != "/var/run/netns/cni-1" || l.IfName != "net1" || l.Network != "ns/dhcp-net" ||
		l.Args != "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p" {
		t.Errorf("lease = %+v", l)
	}
	// The daemon keys the lease by the network's name: the plugin's
	// configuration carries the list's name and version, as libcni gives it.
	var conf map[string]any
	if err := json.Unmarshal(l.Conf, &conf); err != nil {
		t.Fatal(err)
	}
	if conf["name"] != "dhcp-net" || conf["cniVersion"] != "1.0.0" || conf["type"] != "macvlan" || conf["master"] != "eth0" {
		t.Errorf("the plugin's configuration = %s", l.Conf)
	}
	if LeasesOf(&cache.Record{ContainerID: "c2", Attachments: rec.Attachments}, DefaultSocket) != nil {
		t.Error("a record without a network namespace has leases")
	}
	if LeasesOf(nil, DefaultSocket) != nil {
		t.Error("no record has leases")
	}
}
