package attach

import (
	"fmt"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
)

// att is an attachment on ifName whose list holds the given plugin
// configurations (JSON objects).
func att(t *testing.T, ifName string, plugins ...string) Attachment {
	t.Helper()
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"n-%s","plugins":[%s]}`, ifName, strings.Join(plugins, ","))
	list, err := libcni.ConfListFromBytes([]byte(conf))
	if err != nil {
		t.Fatalf("%s: %v", conf, err)
	}
	return Attachment{Name: "ns/" + ifName, IfName: ifName, List: list}
}

// renderStages writes stages as "0 | 1 2 | 3".
func renderStages(stages [][]int) string {
	parts := make([]string, len(stages))
	for i, s := range stages {
		parts[i] = strings.Trim(fmt.Sprint(s), "[]")
	}
	return strings.Join(parts, " | ")
}

const (
	cluster   = `{"type":"bridge","bridge":"cni0","ipam":{"type":"host-local","subnet":"203.0.113.0/24"}}`
	macvlan   = `{"type":"macvlan","master":"eth0","mode":"bridge","ipam":{"type":"host-local","subnet":"192.0.2.0/24"}}`
	sriov     = `{"type":"sriov","deviceID":"0000:af:06.0","vlan":100}`
	raw       = "raw:"
	bondLinks = `{"type":"bond","mode":"active-backup","linksInContainer":true,"links":[{"name":"net1"},{"name":"net2"}]}`
)

func TestStages(t *testing.T) {
	tests := []struct {
		name string
		// plugin has the plugins of each attachment after eth0 (cluster);
		// "" is a list without plugins, raw+s one plugin whose bytes are s.
		plugin []string
		want   string
		// reason, when set, is part of the OrderReason of the last attachment.
		reason string
	}{
		{"macvlans run together", []string{macvlan, macvlan, macvlan}, "0 1 2 3", ""},
		{"master eth0 is the node's eth0", []string{macvlan}, "0 1", ""},
		{"bond over two SR-IOV VFs", []string{sriov, sriov, bondLinks},
			"0 1 2 | 3", `plugin type "bond" is not known to be self-contained`},
		{"bond splits what follows", []string{sriov, sriov, bondLinks, macvlan, macvlan},
			"0 1 2 | 3 | 4 5", ""},
		{"linkInContainer on an earlier interface", []string{macvlan,
			`{"type":"macvlan","linkInContainer":true,"master":"net1","mode":"bridge"}`},
			"0 1 | 2", `plugin "macvlan" has linkInContainer`},
		{"linkInContainer without a master", []string{macvlan, `{"type":"ipvlan","linkInContainer":true}`},
			"0 1 | 2", "linkInContainer"},
		{"linkInContainer false", []string{macvlan, `{"type":"vlan","linkInContainer":false,"master":"bond0","vlanId":7}`},
			"0 1 2", ""},
		{"unknown type", []string{macvlan, `{"type":"frobnicator"}`, macvlan},
			"0 1 | 2 | 3", ""},
		{"unknown type last", []string{macvlan, `{"type":"ovs","bridge":"br1"}`},
			"0 1 | 2", `plugin type "ovs" is not known to be self-contained`},
		{"no type", []string{raw + `{"master":"eth0"}`}, "0 | 1", `plugin type "" is not known`},
		{"unreadable plugin", []string{macvlan, raw + `{"type":`}, "0 1 | 2", "plugins[0] cannot be read"},
		{"no plugins", []string{macvlan, ""}, "0 1 | 2", "no plugin configuration"},
		{"name reference in a known plugin", []string{macvlan,
			`{"type":"ptp","ipam":{"type":"dhcp","daemonSocketPath":"/run/cni/dhcp.sock","request":[{"option":"net1"}]}}`},
			"0 1 | 2", `plugin "ptp" names the pod's interface "net1" in "ipam"`},
		{"reference to the cluster interface", []string{`{"type":"bridge","bridge":"br1","args":{"cni":{"via":"eth0"}}}`},
			"0 | 1", `names the pod's interface "eth0" in "args"`},
		{"reference to a later interface", []string{`{"type":"ptp","ipam":{"type":"static","peer":"net2"}}`, macvlan},
			"0 | 1 | 2", ""},
		{"reference as an object key", []string{macvlan, `{"type":"ptp","routes":{"net1":"x"}}`},
			"0 1 | 2", `names the pod's interface "net1" in "routes"`},
		{"own interface name is no reference", []string{macvlan, `{"type":"ptp","note":"net2"}`},
			"0 1 2", ""},
		{"host-side keys", []string{`{"type":"host-device","device":"net2"}`, `{"type":"bridge","bridge":"net1"}`},
			"0 1 2", ""},
		{"network name is no reference", []string{`{"type":"dummy","name":"net2"}`, macvlan},
			"0 1 2", ""},
		{"tuning on its own interface", []string{macvlan + `,{"type":"tuning","mtu":1280,"sysctl":{"net.ipv4.conf.IFNAME.arp_notify":"1","net/ipv6/conf/net1/accept_ra":"0"}}`},
			"0 1", ""},
		{"tuning on another interface", []string{macvlan, macvlan + `,{"type":"tuning","sysctl":{"net.ipv4.conf.net1.rp_filter":"0"}}`},
			"0 1 | 2", `sets sysctl "net.ipv4.conf.net1.rp_filter"`},
		{"tuning of a namespace-wide sysctl", []string{macvlan + `,{"type":"tuning","args":{"cni":{"sysctl":{"net.ipv4.ip_forward":"1"}}}}`},
			"0 | 1", `sets sysctl "net.ipv4.ip_forward"`},
		{"sbr picks a free table in the pod", []string{macvlan, macvlan + `,{"type":"sbr"}`},
			"0 1 | 2", `plugin type "sbr" is not known`},
		{"vrf shares a device in the pod", []string{macvlan, macvlan + `,{"type":"vrf","vrfname":"blue"}`},
			"0 1 | 2", `plugin type "vrf" is not known`},
		{"chain with portmap and bandwidth", []string{`{"type":"ptp"},{"type":"portmap","capabilities":{"portMappings":true}},{"type":"bandwidth"},{"type":"firewall"}`},
			"0 1", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			atts := []Attachment{att(t, "eth0", cluster)}
			for i, p := range tc.plugin {
				a := att(t, fmt.Sprintf("net%d", i+1), macvlan)
				switch {
				case p == "":
					a.List.Plugins = nil
				case strings.HasPrefix(p, raw):
					a.List.Plugins[0].Bytes = []byte(strings.TrimPrefix(p, raw))
				default:
					a = att(t, a.IfName, p)
				}
				atts = append(atts, a)
			}
			if got := renderStages(Stages(atts)); got != tc.want {
				t.Errorf("stages = %q, want %q", got, tc.want)
			}
			reason := OrderReason(atts, len(atts)-1)
			if tc.reason != "" && !strings.Contains(reason, tc.reason) {
				t.Errorf("reason = %q, want it to contain %q", reason, tc.reason)
			}
		})
	}
}

func TestOrderReasonRuntimeArguments(t *testing.T) {
	atts := []Attachment{att(t, "eth0", cluster), att(t, "net1", macvlan), att(t, "net2", macvlan)}
	atts[2].CapabilityArgs = map[string]any{"deviceID": "net1", "ips": []string{"192.0.2.9/24"}}
	if got, want := OrderReason(atts, 2), `its runtime arguments name the pod's interface "net1"`; got != want {
		t.Fatalf("reason = %q, want %q", got, want)
	}
	atts[2].CapabilityArgs = map[string]any{"mac": "02:00:00:00:00:01"}
	if got := OrderReason(atts, 2); got != "" {
		t.Fatalf("reason = %q, want none", got)
	}
}
