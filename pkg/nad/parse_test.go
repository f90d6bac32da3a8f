package nad

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/plexus-cni/plexus/pkg/fielderr"
)

// s1Config is the published macvlan + host-local NAD of scenario S1.
const s1Config = `{"cniVersion":"0.3.0","type":"macvlan","master":"eth0","mode":"bridge","ipam":{"type":"host-local","subnet":"192.168.1.0/24","rangeStart":"192.168.1.200","rangeEnd":"192.168.1.216","routes":[{"dst":"0.0.0.0/0"}],"gateway":"192.168.1.1"}}`

// s4Config is the published whereabouts NAD of scenario S4.
const s4Config = `{"cniVersion":"0.3.0","name":"whereaboutsexample","type":"macvlan","master":"ens3","mode":"bridge","ipam":{"type":"whereabouts","range":"192.168.91.100-192.168.91.110/24","etcd_host":"192.168.91.8:2379","log_file":"/tmp/whereabouts.log","log_level":"debug","gateway":"192.168.91.1"}}`

func decodeJSON(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name, config string
		want         Delegate
		wantConflist string
	}{
		{
			name: "S1 single plugin, name injected", config: s1Config,
			want:         Delegate{Name: "macvlan-conf", CNIVersion: "0.3.0", Types: []string{"macvlan"}, Capabilities: map[string]bool{}, Source: "macvlan-conf"},
			wantConflist: `{"cniVersion":"0.3.0","name":"macvlan-conf","plugins":[` + s1Config + `]}`,
		},
		{
			name: "S4 whereabouts keeps its name and unknown keys", config: s4Config,
			want:         Delegate{Name: "whereaboutsexample", CNIVersion: "0.3.0", Types: []string{"macvlan"}, Capabilities: map[string]bool{}, Source: "macvlan-conf"},
			wantConflist: `{"cniVersion":"0.3.0","name":"whereaboutsexample","plugins":[` + s4Config + `]}`,
		},
		{
			name:   "list with empty name, capabilities union, extra keys",
			config: `{"cniVersion":"1.0.0","name":"","disableCheck":true,"plugins":[{"type":"bridge","capabilities":{"ips":true,"mac":false},"ipam":{"type":"static"}},{"type":"tuning","capabilities":{"mac":true},"x":{"y":1}}]}`,
			want: Delegate{Name: "macvlan-conf", CNIVersion: "1.0.0", Types: []string{"bridge", "tuning"},
				Capabilities: map[string]bool{"ips": true, "mac": true}, Source: "macvlan-conf"},
			wantConflist: `{"cniVersion":"1.0.0","name":"macvlan-conf","disableCheck":true,"plugins":[{"type":"bridge","capabilities":{"ips":true,"mac":false},"ipam":{"type":"static"}},{"type":"tuning","capabilities":{"mac":true},"x":{"y":1}}]}`,
		},
		{
			name: "missing cniVersion defaults", config: `{"type":"macvlan","ipam":{}}`,
			want:         Delegate{Name: "macvlan-conf", CNIVersion: "0.3.1", Types: []string{"macvlan"}, Capabilities: map[string]bool{}, Source: "macvlan-conf"},
			wantConflist: `{"cniVersion":"0.3.1","name":"macvlan-conf","plugins":[{"type":"macvlan","ipam":{}}]}`,
		},
		{
			name:         "CNO simple macvlan static rendering",
			config:       `{"cniVersion":"0.3.1","type":"macvlan","master":"ens3","mode":"bridge","ipam":{"type":"static","addresses":[{"address":"192.168.91.250/24","gateway":"192.168.91.1"}],"routes":[{"dst":"0.0.0.0/0","gw":"192.168.91.1"}],"capabilities":["ips"]}}`,
			want:         Delegate{Name: "macvlan-conf", CNIVersion: "0.3.1", Types: []string{"macvlan"}, Capabilities: map[string]bool{}, Source: "macvlan-conf"},
			wantConflist: `{"cniVersion":"0.3.1","name":"macvlan-conf","plugins":[{"cniVersion":"0.3.1","type":"macvlan","master":"ens3","mode":"bridge","ipam":{"type":"static","addresses":[{"address":"192.168.91.250/24","gateway":"192.168.91.1"}],"routes":[{"dst":"0.0.0.0/0","gw":"192.168.91.1"}],"capabilities":["ips"]}}]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.config), "macvlan-conf")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(decodeJSON(t, []byte(tt.wantConflist)), decodeJSON(t, got.Conflist)); diff != "" {
				t.Errorf("Conflist mismatch (-want +got):\n%s", diff)
			}
			got.Conflist = nil
			if diff := cmp.Diff(&tt.want, got); diff != "" {
				t.Errorf("Delegate mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []struct{ name, config, want string }{
		{"syntax error position", "{\n  \"type\": \"macvlan\",\n  \"mode\" \"bridge\"\n}", `spec.config: invalid JSON at line 3, column 10: invalid character '"' after object key`},
		{"truncated", `{"type":"macvlan"`, `spec.config: invalid JSON at line 1, column 17: unexpected end of JSON input`},
		{"null", `null`, `spec.config: must be a JSON object (a CNI plugin configuration or configuration list)`},
		{"not an object", `[1]`, `spec.config: must be a JSON object (a CNI plugin configuration or configuration list)`},
		{"no type nor plugins", `{"cniVersion":"0.3.1"}`, `spec.config.type: is required (a plugin configuration needs "type", a configuration list needs "plugins")`},
		{"empty type", `{"type":""}`, `spec.config.type: is required`},
		{"type not string", `{"type":1}`, `spec.config.type: invalid value "1": must be a string`},
		{"type is a path", `{"type":"../bin/macvlan"}`, `spec.config.type: invalid value "../bin/macvlan": must be a plugin binary name, not a path`},
		{"plugins empty", `{"plugins":[]}`, `spec.config.plugins: must list at least one plugin`},
		{"plugins not array", `{"plugins":{}}`, `spec.config.plugins: invalid value "{}": must be an array of plugin objects`},
		{"plugin not object", `{"plugins":[{"type":"a"},3]}`, `spec.config.plugins[1]: invalid value "3": must be a JSON object`},
		{"second plugin without type", `{"plugins":[{"type":"a"},{"mtu":1}]}`, `spec.config.plugins[1].type: is required`},
		{"name not string", `{"type":"a","name":5}`, `spec.config.name: invalid value "5": must be a string`},
		{"bad name", `{"type":"a","name":"my net"}`, `spec.config.name: invalid value "my net": must start with a letter or digit and contain only letters, digits, '_', '.' and '-'`},
		{"bad cniVersion", `{"type":"a","cniVersion":"0.3"}`, `spec.config.cniVersion: invalid value "0.3": unsupported CNI version; want one of 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0`},
		{"capabilities not bools", `{"type":"a","capabilities":{"ips":"yes"}}`, `spec.config.capabilities: invalid value "{\"ips\":\"yes\"}": must be an object of booleans`},
		{"libcni rejects", `{"disableCheck":"maybe","plugins":[{"type":"a"}]}`, `spec.config: not a valid CNI configuration: error parsing configuration list: invalid value "maybe" for disableCheck`},
		{"ipam not object", `{"type":"a","ipam":"host-local"}`, `spec.config.ipam: invalid value "\"host-local\"": must be a JSON object`},
		{"list ipam range", `{"plugins":[{"type":"macvlan","ipam":{"type":"whereabouts","range":"10.0.0.0/33"}}]}`, `spec.config.plugins[0].ipam.range: invalid value "10.0.0.0/33": not a CIDR (like 192.0.2.0/24) or a first-last/prefix range (like 192.0.2.10-192.0.2.50/24)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(tt.config), "net")
			if err == nil {
				t.Fatalf("Parse(%s) = %s, want error %q", tt.config, d.Conflist, tt.want)
			}
			var fe *fielderr.Error
			if !errors.As(err, &fe) {
				t.Errorf("error %v is %T, want *fielderr.Error", err, err)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got: %s\nwant: %s", err, tt.want)
			}
		})
	}
}

func TestParseNoNameAnywhere(t *testing.T) {
	_, err := Parse([]byte(`{"type":"a"}`), "")
	if err == nil || err.Error() != "spec.config.name: is required" {
		t.Errorf("err = %v, want spec.config.name: is required", err)
	}
}

func TestValidateIPAM(t *testing.T) {
	tests := []struct{ name, ipam, want string }{
		{"dhcp", `{"type":"dhcp","anything":1}`, ""},
		{"unknown type", `{"type":"other","range":"nonsense"}`, ""},
		{"no type", `{}`, ""},
		{"type not string", `{"type":1}`, `f.type: invalid value "1": must be a string`},
		{"host-local S1", `{"type":"host-local","subnet":"192.168.1.0/24","rangeStart":"192.168.1.200","rangeEnd":"192.168.1.216","routes":[{"dst":"0.0.0.0/0"}],"gateway":"192.168.1.1"}`, ""},
		{"host-local ranges", `{"type":"host-local","ranges":[[{"subnet":"10.1.0.0/16","rangeStart":"10.1.0.10"}],[{"subnet":"2001:db8::/64","gateway":"2001:db8::1"}]]}`, ""},
		{"host-local bad subnet", `{"type":"host-local","subnet":"192.168.1.0/33"}`, `f.subnet: invalid value "192.168.1.0/33": not a CIDR (like 192.0.2.0/24)`},
		{"host-local tiny subnet", `{"type":"host-local","subnet":"192.168.1.0/31"}`, `f.subnet: invalid value "192.168.1.0/31": network too small to allocate from`},
		{"host-local start outside", `{"type":"host-local","subnet":"192.168.1.0/24","rangeStart":"192.168.2.1"}`, `f.rangeStart: invalid value "192.168.2.1": outside subnet 192.168.1.0/24`},
		{"host-local end before start", `{"type":"host-local","subnet":"192.168.1.0/24","rangeStart":"192.168.1.20","rangeEnd":"192.168.1.10"}`, `f.rangeEnd: invalid value "192.168.1.10": before rangeStart 192.168.1.20`},
		{"host-local v6 start in v4 subnet", `{"type":"host-local","subnet":"192.168.1.0/24","rangeStart":"2001:db8::1"}`, `f.rangeStart: invalid value "2001:db8::1": outside subnet 192.168.1.0/24`},
		{"host-local bad gateway", `{"type":"host-local","gateway":"192.168.1"}`, `f.gateway: invalid value "192.168.1": not an IP address`},
		{"host-local range missing subnet", `{"type":"host-local","ranges":[[{"rangeStart":"10.0.0.1"}]]}`, `f.ranges[0][0].subnet: is required`},
		{"host-local ranges wrong shape", `{"type":"host-local","ranges":[{"subnet":"10.0.0.0/24"}]}`, `f.ranges: invalid value "[{\"subnet\":\"10.0.0.0/24\"}]": must be an array of arrays of range objects`},
		{"host-local range end outside", `{"type":"host-local","ranges":[[{"subnet":"10.0.0.0/24"}],[{"subnet":"10.1.0.0/24","rangeEnd":"10.2.0.1"}]]}`, `f.ranges[1][0].rangeEnd: invalid value "10.2.0.1": outside subnet 10.1.0.0/24`},
		{"route dst missing", `{"type":"host-local","routes":[{"gw":"10.0.0.1"}]}`, `f.routes[0].dst: is required`},
		{"route dst bad", `{"type":"static","routes":[{"dst":"0.0.0.0"}]}`, `f.routes[0].dst: invalid value "0.0.0.0": not a CIDR (like 192.0.2.0/24)`},
		{"route gw bad", `{"type":"static","routes":[{"dst":"0.0.0.0/0","gw":"x"}]}`, `f.routes[0].gw: invalid value "x": not an IP address`},
		{"static ok", `{"type":"static","addresses":[{"address":"192.168.91.250/24","gateway":"192.168.91.1"},{"address":"2001:db8::5/64"}],"dns":{"nameservers":["1.1.1.1"]}}`, ""},
		{"static bare address", `{"type":"static","addresses":[{"address":"192.168.91.250"}]}`, `f.addresses[0].address: invalid value "192.168.91.250": not a CIDR (like 192.0.2.0/24)`},
		{"static missing address", `{"type":"static","addresses":[{"gateway":"10.0.0.1"}]}`, `f.addresses[0].address: is required`},
		{"static bad address gateway", `{"type":"static","addresses":[{"address":"10.0.0.2/24","gateway":"10.0.0"}]}`, `f.addresses[0].gateway: invalid value "10.0.0": not an IP address`},
		{"static addresses not array", `{"type":"static","addresses":{"address":"10.0.0.2/24"}}`, `f.addresses: invalid value "{\"address\":\"10.0.0.2/24\"}": must be an array of objects`},
		{"whereabouts S4", `{"type":"whereabouts","range":"192.168.91.100-192.168.91.110/24","etcd_host":"192.168.91.8:2379","gateway":"192.168.91.1"}`, ""},
		{"plexus-ipam full", `{"type":"plexus-ipam","range":"10.2.0.0/16","range_start":"10.2.0.10","range_end":"10.2.0.200","exclude":["10.2.0.64/28","10.2.0.99"],"gateway":"10.2.0.1","ipRanges":[{"range":"2001:db8::/64","exclude":["2001:db8::1"]}]}`, ""},
		{"whereabouts range host bits", `{"type":"whereabouts","range":"10.2.3.4/16"}`, ""},
		{"whereabouts bad range", `{"type":"whereabouts","range":"10.0.0.0/33"}`, `f.range: invalid value "10.0.0.0/33": not a CIDR (like 192.0.2.0/24) or a first-last/prefix range (like 192.0.2.10-192.0.2.50/24)`},
		{"whereabouts dashed first outside", `{"type":"whereabouts","range":"10.1.0.5-10.0.0.9/24"}`, `f.range: invalid value "10.1.0.5-10.0.0.9/24": first address 10.1.0.5 is outside 10.0.0.0/24`},
		{"whereabouts dashed reversed", `{"type":"whereabouts","range":"10.0.0.9-10.0.0.5/24"}`, `f.range: invalid value "10.0.0.9-10.0.0.5/24": last address 10.0.0.5 is before first address 10.0.0.9`},
		{"whereabouts dashed bad first", `{"type":"whereabouts","range":"x-10.0.0.5/24"}`, `f.range: invalid value "x-10.0.0.5/24": not a CIDR (like 192.0.2.0/24) or a first-last/prefix range (like 192.0.2.10-192.0.2.50/24)`},
		{"range_start outside", `{"type":"whereabouts","range":"10.0.0.0/24","range_start":"10.0.1.1"}`, `f.range_start: invalid value "10.0.1.1": outside range 10.0.0.0/24`},
		{"range_end outside dashed", `{"type":"plexus-ipam","range":"10.0.0.10-10.0.0.20/24","range_end":"10.0.0.30"}`, `f.range_end: invalid value "10.0.0.30": outside range 10.0.0.10-10.0.0.20/24`},
		{"range_end before start", `{"type":"plexus-ipam","range":"10.0.0.0/24","range_start":"10.0.0.30","range_end":"10.0.0.20"}`, `f.range_end: invalid value "10.0.0.20": before range_start 10.0.0.30`},
		{"range_start bad", `{"type":"plexus-ipam","range_start":"10.0.0"}`, `f.range_start: invalid value "10.0.0": not an IP address`},
		{"exclude bad", `{"type":"whereabouts","range":"10.0.0.0/24","exclude":["10.0.0.0/24","nope"]}`, `f.exclude[1]: invalid value "nope": not a CIDR or an IP address`},
		{"exclude not array", `{"type":"whereabouts","exclude":"10.0.0.1"}`, `f.exclude: invalid value "\"10.0.0.1\"": must be an array of CIDRs or IP addresses`},
		{"gateway bad", `{"type":"whereabouts","gateway":"10.0.0.256"}`, `f.gateway: invalid value "10.0.0.256": not an IP address`},
		{"ipRanges bad", `{"type":"whereabouts","ipRanges":[{"range":"10.0.0.0/24"},{"range":"2001:db8::/129"}]}`, `f.ipRanges[1].range: invalid value "2001:db8::/129": not a CIDR (like 192.0.2.0/24) or a first-last/prefix range (like 192.0.2.10-192.0.2.50/24)`},
		{"host-local empty range set", `{"type":"host-local","ranges":[[{"subnet":"10.0.0.0/24"}],[]]}`, `f.ranges[1]: empty range set`},
		{"host-local range gateway of the other family", `{"type":"host-local","ranges":[[{"subnet":"10.0.0.0/24","gateway":"2001:db8::1"}]]}`, `f.ranges[0][0].gateway: invalid value "2001:db8::1": not of subnet 10.0.0.0/24's address family`},
		{"host-local gateway of the other family", `{"type":"host-local","subnet":"2001:db8::/64","gateway":"10.0.0.1"}`, `f.gateway: invalid value "10.0.0.1": not of subnet 2001:db8::/64's address family`},
		{"plexus-ipam host-local ranges", `{"type":"plexus-ipam","ranges":[[{"subnet":"10.0.0.0/31"}],[{"subnet":"2001:db8::/64","rangeEnd":"2001:db9::1"}]]}`, `f.ranges[1][0].rangeEnd: invalid value "2001:db9::1": outside subnet 2001:db8::/64`},
		{"plexus-ipam empty range set", `{"type":"plexus-ipam","range":"10.0.0.0/24","ranges":[[]]}`, `f.ranges[0]: empty range set`},
		{"plexus-ipam legacy subnet", `{"type":"plexus-ipam","subnet":"10.0.0.0/24","rangeStart":"10.0.1.1"}`, `f.rangeStart: invalid value "10.0.1.1": outside subnet 10.0.0.0/24`},
		{"plexus-ipam top-level gateway serves its family", `{"type":"plexus-ipam","subnet":"2001:db8::/64","gateway":"10.0.0.1","ipRanges":[{"range":"10.0.0.0/24"}]}`, ""},
		{"etcd_host without endpoint", `{"type":"whereabouts","range":"10.0.0.0/24","etcd_host":" , "}`, `f.etcd_host: invalid value " , ": names no endpoint (want host:port[,host:port])`},
		{"ipRanges start outside", `{"type":"whereabouts","ipRanges":[{"range":"2001:db8::/64","range_start":"10.0.0.1"}]}`, `f.ipRanges[0].range_start: invalid value "10.0.0.1": outside range 2001:db8::/64`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateIPAM(json.RawMessage(tt.ipam), "f")
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("ValidateIPAM(%s)\n got: %s\nwant: %s", tt.ipam, got, tt.want)
			}
		})
	}
}

func TestWithCNIArgs(t *testing.T) {
	d, err := Parse([]byte(`{"cniVersion":"1.0.0","plugins":[{"type":"a","args":{"cni":{"keep":1,"over":"nad"},"other":true}},{"type":"b"}]}`), "n")
	if err != nil {
		t.Fatal(err)
	}
	before := string(d.Conflist)
	got, err := d.WithCNIArgs(map[string]any{"over": "pod", "big": json.Number("12345678901234567890")})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"cniVersion":"1.0.0","name":"n","plugins":[
		{"type":"a","args":{"cni":{"keep":1,"over":"pod","big":12345678901234567890},"other":true}},
		{"type":"b","args":{"cni":{"over":"pod","big":12345678901234567890}}}]}`
	if diff := cmp.Diff(decodeJSON(t, []byte(want)), decodeJSON(t, got.Conflist)); diff != "" {
		t.Errorf("conflist mismatch (-want +got):\n%s", diff)
	}
	if !strings.Contains(string(got.Conflist), "12345678901234567890") {
		t.Errorf("large integer not preserved: %s", got.Conflist)
	}
	if string(d.Conflist) != before {
		t.Errorf("original delegate changed: %s", d.Conflist)
	}
	if _, err := got.List(); err != nil {
		t.Errorf("List of merged delegate: %v", err)
	}
	same, err := d.WithCNIArgs(nil)
	if err != nil || same != d {
		t.Errorf("WithCNIArgs(nil) = %p, %v; want the same delegate", same, err)
	}
}

func TestWithCNIArgsRejectsNonObjectArgs(t *testing.T) {
	d, err := Parse([]byte(`{"type":"a","args":{"cni":[1]}}`), "n")
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.WithCNIArgs(map[string]any{"k": "v"})
	if err == nil || !strings.Contains(err.Error(), "args.cni: invalid value [1]: must be a JSON object") {
		t.Errorf("err = %v, want args.cni object error", err)
	}
}

func TestList(t *testing.T) {
	d, err := Parse([]byte(s1Config), "macvlan-conf")
	if err != nil {
		t.Fatal(err)
	}
	l, err := d.List()
	if err != nil {
		t.Fatal(err)
	}
	if l.Name != "macvlan-conf" || l.CNIVersion != "0.3.0" || len(l.Plugins) != 1 || l.Plugins[0].Network.Type != "macvlan" || l.Plugins[0].Network.IPAM.Type != "host-local" {
		t.Errorf("List = %+v (plugin %+v)", l, l.Plugins[0].Network)
	}
}

func TestCapabilityNames(t *testing.T) {
	d := &Delegate{Capabilities: map[string]bool{"mac": true, "ips": true}}
	if got := d.CapabilityNames(); !cmp.Equal(got, []string{"ips", "mac"}) {
		t.Errorf("CapabilityNames = %v", got)
	}
}
