package netselect

import (
	"encoding/json"
	"errors"
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/plexus-cni/plexus/pkg/fielderr"
)

func TestParseNetworksValid(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  []Selection
	}{
		{"empty", "", nil},
		{"blank", "  \t", nil},
		{"empty JSON array", "[]", nil},
		{"one name", "macvlan-conf", []Selection{{Namespace: "pod-ns", Name: "macvlan-conf"}}},
		{"same network twice", "macvlan-conf,macvlan-conf", []Selection{
			{Namespace: "pod-ns", Name: "macvlan-conf"}, {Namespace: "pod-ns", Name: "macvlan-conf"}}},
		{"namespace and interface, trimmed", " kube-system/macvlan-standalone-vlan0@net9 , b ", []Selection{
			{Namespace: "kube-system", Name: "macvlan-standalone-vlan0", InterfaceName: "net9"},
			{Namespace: "pod-ns", Name: "b"}}},
		{"dotted name (bug B7)", "ns/net.v1.example", []Selection{{Namespace: "ns", Name: "net.v1.example"}}},
		{"interface with dots and capitals", "a@Eth0.100", []Selection{{Namespace: "pod-ns", Name: "a", InterfaceName: "Eth0.100"}}},
		{"JSON minimal", `[{"name":"a"}]`, []Selection{{Namespace: "pod-ns", Name: "a"}}},
		{"JSON empty namespace", `[{"name":"a","namespace":""}]`, []Selection{{Namespace: "pod-ns", Name: "a"}}},
		{"JSON unknown keys ignored", `[{"name":"a","org.example.foo":1,"Name":"x"}]`, []Selection{{Namespace: "pod-ns", Name: "a"}}},
		{"JSON interfaceRequest alias", `[{"name":"a","interfaceRequest":"eth1"}]`, []Selection{{Namespace: "pod-ns", Name: "a", InterfaceName: "eth1"}}},
		{"JSON alias equal to interface", `[{"name":"a","interface":"eth1","interfaceRequest":"eth1"}]`, []Selection{{Namespace: "pod-ns", Name: "a", InterfaceName: "eth1"}}},
		{"JSON nulls are absent", `[{"name":"a","ips":null,"mac":null,"default-route":null,"cni-args":null}]`, []Selection{{Namespace: "pod-ns", Name: "a"}}},
		{"JSON empty cni-args is absent", `[{"name":"a","cni-args":{}}]`, []Selection{{Namespace: "pod-ns", Name: "a"}}},
		{"JSON every key", `[{"name":"a","namespace":"b","interface":"net5","ips":["10.1.1.5/24","2001:db8::5"],
			"mac":"02:00:5e:10:00:01","infiniband-guid":"24:8a:07:03:00:8d:ae:2f","deviceID":"0000:03:00.1",
			"cni-args":{"k":"v","n":12345678901234567890},
			"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"udp","hostIP":"192.0.2.1"},{"hostPort":1,"containerPort":65535}],
			"bandwidth":{"ingressRate":1000,"ingressBurst":2000,"egressRate":3000}}]`,
			[]Selection{{Namespace: "b", Name: "a", InterfaceName: "net5", IPs: []string{"10.1.1.5/24", "2001:db8::5"},
				MAC: "02:00:5e:10:00:01", InfinibandGUID: "24:8a:07:03:00:8d:ae:2f", DeviceID: "0000:03:00.1",
				CNIArgs: map[string]any{"k": "v", "n": json.Number("12345678901234567890")},
				PortMappings: []PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "UDP", HostIP: "192.0.2.1"},
					{HostPort: 1, ContainerPort: 65535}},
				Bandwidth: &Bandwidth{IngressRate: 1000, IngressBurst: 2000, EgressRate: 3000}}}},
		{"JSON default-route", `[{"name":"a","default-route":["192.0.2.1"]},{"name":"b"}]`, []Selection{
			{Namespace: "pod-ns", Name: "a", DefaultRoute: []net.IP{net.ParseIP("192.0.2.1")}},
			{Namespace: "pod-ns", Name: "b"}}},
		{"JSON empty default-route kept", `[{"name":"a","default-route":[]}]`, []Selection{
			{Namespace: "pod-ns", Name: "a", DefaultRoute: []net.IP{}}}},
		{"JSON claim", `[{"name":"a","ipam-claim-reference":"vm1.a.net1"}]`, []Selection{
			{Namespace: "pod-ns", Name: "a", IPAMClaimReference: "vm1.a.net1"}}},
		{"JSON same network, distinct interfaces", `[{"name":"a","interface":"x"},{"name":"a","interface":"y"},{"name":"a"},{"name":"a"}]`, []Selection{
			{Namespace: "pod-ns", Name: "a", InterfaceName: "x"}, {Namespace: "pod-ns", Name: "a", InterfaceName: "y"},
			{Namespace: "pod-ns", Name: "a"}, {Namespace: "pod-ns", Name: "a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNetworks(tt.value, "pod-ns")
			if err != nil {
				t.Fatalf("ParseNetworks(%q) error: %v", tt.value, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseNetworks(%q) mismatch (-want +got):\n%s", tt.value, diff)
			}
		})
	}
}

func TestParseNetworksInvalid(t *testing.T) {
	tests := []struct {
		name, value, want string
	}{
		{"trailing comma (bug B6)", "net1,", `networks[1]: empty item (a stray or trailing ',')`},
		{"double comma", "a,,b", `networks[1]: empty item (a stray or trailing ',')`},
		{"empty name after namespace (bug B6)", "ns/", `networks[0].name: invalid value "ns/": name must not be empty`},
		{"empty namespace", "/name", `networks[0].namespace: invalid value "/name": namespace must not be empty`},
		{"empty interface", "name@", `networks[0].interface: invalid value "name@": interface must not be empty`},
		{"two slashes", "a/b/c", `networks[0]: invalid value "a/b/c": more than one '/'; want [namespace/]name[@interface]`},
		{"two ats", "a@b@c", `networks[0]: invalid value "a@b@c": more than one '@'; want [namespace/]name[@interface]`},
		{"upper-case name", "Net1", `networks[0].name: invalid value "Net1": name must be a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', starting and ending with a letter or digit)`},
		{"dotted namespace", "a.b/c", `networks[0].namespace: invalid value "a.b/c": namespace must be a DNS-1123 label (lower-case letters, digits and '-', starting and ending with a letter or digit)`},
		{"long namespace", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/b", `networks[0].namespace: invalid value "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/b": namespace must be at most 63 characters`},
		{"inner space", "net a", `networks[0].name: invalid value "net a": name must be a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', starting and ending with a letter or digit)`},
		{"long ifname", "a@abcdefghijklmnop", `networks[0].interface: invalid value "a@abcdefghijklmnop": interface must be at most 15 bytes`},
		{"dot ifname", "a@..", `networks[0].interface: invalid value "a@..": interface must not be "." or ".."`},
		{"colon ifname", "a@eth0:1", `networks[0].interface: invalid value "a@eth0:1": interface must not contain '/', ':' or NUL`},
		{"non-UTF-8 ifname", "a@\xaf", `networks[0].interface: invalid value "a@\xaf": interface must be valid UTF-8 without control characters`},
		{"duplicate interface comma", "a@x,b@x", `networks[1].interface: invalid value "x": already requested by networks[0]`},
		{"JSON syntax", `[{"name":"a"`, `networks: invalid value "[{\"name\":\"a\"": not a JSON array of network selection objects: unexpected end of JSON input`},
		{"JSON object not array", `{"name":"a"}`, `networks: invalid value "{\"name\":\"a\"}": not a JSON array of network selection objects: json: cannot unmarshal object into Go value of type []json.RawMessage`},
		{"JSON element not object", `[{"name":"a"},"b"]`, `networks[1]: invalid value "\"b\"": must be a JSON object`},
		{"JSON null element", `[null]`, `networks[0]: invalid value "null": must be a JSON object`},
		{"JSON missing name", `[{"namespace":"a"}]`, `networks[0].name: is required`},
		{"JSON name not string", `[{"name":5}]`, `networks[0].name: invalid value "5": must be a string`},
		{"JSON name with slash", `[{"name":"a/b"}]`, `networks[0].name: invalid value "a/b": name must be a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', starting and ending with a letter or digit)`},
		{"JSON bad namespace", `[{"name":"a","namespace":"A"}]`, `networks[0].namespace: invalid value "A": namespace must be a DNS-1123 label (lower-case letters, digits and '-', starting and ending with a letter or digit)`},
		{"JSON bad interface", `[{"name":"a","interface":"a b"}]`, `networks[0].interface: invalid value "a b": interface name must not contain whitespace`},
		{"JSON conflicting alias", `[{"name":"a","interface":"x","interfaceRequest":"y"}]`, `networks[0].interfaceRequest: invalid value "y": conflicts with interface "x" (interfaceRequest is its deprecated alias)`},
		{"JSON bad alias", `[{"name":"a","interfaceRequest":"."}]`, `networks[0].interfaceRequest: invalid value ".": interface name must not be "." or ".."`},
		{"duplicate interface JSON", `[{"name":"a","interface":"x"},{"name":"b"},{"name":"c","interfaceRequest":"x"}]`, `networks[2].interface: invalid value "x": already requested by networks[0]`},
		{"empty ips", `[{"name":"a","ips":[]}]`, `networks[0].ips: must list at least one IP address`},
		{"ips not array", `[{"name":"a","ips":"10.0.0.1"}]`, `networks[0].ips: invalid value "\"10.0.0.1\"": must be an array of IP addresses`},
		{"bad ip", `[{"name":"a","ips":["10.0.0.1","10.0.0.300"]}]`, `networks[0].ips[1]: invalid value "10.0.0.300": not an IP address or CIDR`},
		{"bad cidr", `[{"name":"a","ips":["10.0.0.1/33"]}]`, `networks[0].ips[0]: invalid value "10.0.0.1/33": not an IP address or CIDR`},
		{"bad mac", `[{"name":"x"},{"name":"a","mac":"zz"}]`, `networks[1].mac: invalid value "zz": not a 6-byte Ethernet MAC address (like 02:00:5e:10:00:01)`},
		{"8-byte mac", `[{"name":"a","mac":"24:8a:07:03:00:8d:ae:2f"}]`, `networks[0].mac: invalid value "24:8a:07:03:00:8d:ae:2f": not a 6-byte Ethernet MAC address (like 02:00:5e:10:00:01)`},
		{"6-byte guid", `[{"name":"a","infiniband-guid":"02:00:5e:10:00:01"}]`, `networks[0].infiniband-guid: invalid value "02:00:5e:10:00:01": not an 8-byte InfiniBand GUID (like 24:8a:07:03:00:8d:ae:2f)`},
		{"deviceID not string", `[{"name":"a","deviceID":1}]`, `networks[0].deviceID: invalid value "1": must be a string`},
		{"cni-args not object", `[{"name":"a","cni-args":[1]}]`, `networks[0].cni-args: invalid value "[1]": must be a JSON object`},
		{"empty portMappings", `[{"name":"a","portMappings":[]}]`, `networks[0].portMappings: must list at least one port mapping`},
		{"port zero", `[{"name":"a","portMappings":[{"hostPort":0,"containerPort":80}]}]`, `networks[0].portMappings[0].hostPort: invalid value "0": must be between 1 and 65535`},
		{"port too big", `[{"name":"a","portMappings":[{"hostPort":1,"containerPort":65536}]}]`, `networks[0].portMappings[0].containerPort: invalid value "65536": must be between 1 and 65535`},
		{"port missing", `[{"name":"a","portMappings":[{"hostPort":1}]}]`, `networks[0].portMappings[0].containerPort: is required`},
		{"port not int", `[{"name":"a","portMappings":[{"hostPort":"80","containerPort":80}]}]`, `networks[0].portMappings[0]: invalid value "{\"hostPort\":\"80\",\"containerPort\":80}": must be an object with integer hostPort and containerPort`},
		{"bad protocol", `[{"name":"a","portMappings":[{"hostPort":1,"containerPort":2,"protocol":"icmp"}]}]`, `networks[0].portMappings[0].protocol: invalid value "icmp": must be TCP, UDP or SCTP`},
		{"bad hostIP", `[{"name":"a","portMappings":[{"hostPort":1,"containerPort":2,"hostIP":"x"}]}]`, `networks[0].portMappings[0].hostIP: invalid value "x": not an IP address`},
		{"zero rate", `[{"name":"a","bandwidth":{"ingressRate":0}}]`, `networks[0].bandwidth.ingressRate: invalid value "0": must be greater than 0`},
		{"negative burst", `[{"name":"a","bandwidth":{"egressRate":1,"egressBurst":-1}}]`, `networks[0].bandwidth.egressBurst: invalid value "-1": must be greater than 0`},
		{"burst without rate", `[{"name":"a","bandwidth":{"ingressBurst":10}}]`, `networks[0].bandwidth.ingressBurst: invalid value "10": needs ingressRate`},
		{"bandwidth not object", `[{"name":"a","bandwidth":5}]`, `networks[0].bandwidth: invalid value "5": must be an object of integer rates and bursts`},
		{"bad default-route", `[{"name":"a","default-route":["gw"]}]`, `networks[0].default-route[0]: invalid value "gw": not an IP address`},
		{"two default-routes", `[{"name":"a","default-route":["192.0.2.1"]},{"name":"b"},{"name":"c","default-route":[]}]`, `networks[2].default-route: only one element may carry default-route, networks[0] already does`},
		{"claim with ips", `[{"name":"a","ips":["10.0.0.1"],"ipam-claim-reference":"c"}]`, `networks[0].ipam-claim-reference: invalid value "c": must not be combined with ips`},
		{"bad claim name", `[{"name":"a","ipam-claim-reference":"C"}]`, `networks[0].ipam-claim-reference: invalid value "C": IPAMClaim name must be a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', starting and ending with a letter or digit)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNetworks(tt.value, "pod-ns")
			if err == nil {
				t.Fatalf("ParseNetworks(%q) = %+v, want error %q", tt.value, got, tt.want)
			}
			var fe *fielderr.Error
			if !errors.As(err, &fe) {
				t.Errorf("error %v is %T, want *fielderr.Error", err, err)
			}
			if err.Error() != tt.want {
				t.Errorf("ParseNetworks(%q) error\n got: %s\nwant: %s", tt.value, err, tt.want)
			}
		})
	}
}

func TestParseDefaultNetwork(t *testing.T) {
	tests := []struct {
		name, value string
		want        *Selection
		wantErr     string
	}{
		{name: "empty", value: " "},
		{name: "bare name takes default namespace", value: "macvlan-standalone-vlan0",
			want: &Selection{Namespace: "kube-system", Name: "macvlan-standalone-vlan0"}},
		{name: "qualified", value: "kube-system/macvlan-standalone-vlan0",
			want: &Selection{Namespace: "kube-system", Name: "macvlan-standalone-vlan0"}},
		{name: "JSON", value: `[{"name":"a","namespace":"b"}]`, want: &Selection{Namespace: "b", Name: "a"}},
		{name: "two", value: "a,b", wantErr: `default-network: invalid value "a,b": must select exactly one network, got 2`},
		{name: "invalid element", value: "a/", wantErr: `default-network[0].name: invalid value "a/": name must not be empty`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDefaultNetwork(tt.value, "kube-system")
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ParseDefaultNetwork(%q) = %+v, %v; want error %q", tt.value, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDefaultNetwork(%q) error: %v", tt.value, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMarshalKeepsEmptyDefaultRoute(t *testing.T) {
	b, err := json.Marshal(Selection{Namespace: "n", Name: "a", DefaultRoute: []net.IP{}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"namespace":"n","name":"a","default-route":[]}`; string(b) != want {
		t.Errorf("Marshal = %s, want %s", b, want)
	}
}
