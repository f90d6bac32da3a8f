package networks

import (
	"strings"
	"testing"

	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
)

func macvlan(m *v1.SimpleMacvlanConfig) v1.NetworkDefinitionSpec {
	return v1.NetworkDefinitionSpec{Type: v1.NetworkTypeSimpleMacvlan, Name: "macvlan-network", Namespace: "tomcat", SimpleMacvlanConfig: m}
}

func TestRender(t *testing.T) {
	tests := []struct {
		name string
		spec v1.NetworkDefinitionSpec
		want string
	}{
		{"CNO's test-verified example", macvlan(&v1.SimpleMacvlanConfig{Master: "eth0", Mode: "Bridge", IPAMConfig: &v1.IPAMConfig{Type: "DHCP"}}),
			`{ "cniVersion": "0.3.1", "type": "macvlan", "master": "eth0", "mode": "bridge", "ipam": { "type": "dhcp" } }`},
		{"no simpleMacvlanConfig is DHCP", macvlan(nil),
			`{ "cniVersion": "0.3.1", "type": "macvlan", "ipam": { "type": "dhcp" } }`},
		{"S3 static", macvlan(&v1.SimpleMacvlanConfig{Master: "ens3", Mode: "Bridge", IPAMConfig: &v1.IPAMConfig{Type: "Static",
			StaticIPAMConfig: &v1.StaticIPAMConfig{Addresses: []v1.StaticIPAMAddress{{Address: "192.168.91.250/24", Gateway: "192.168.91.1"}}}}}),
			`{ "cniVersion": "0.3.1", "type": "macvlan", "master": "ens3", "mode": "bridge", "ipam": {"type":"static","addresses":[{"address":"192.168.91.250/24","gateway":"192.168.91.1"}]} }`},
		{"static without addresses gets capabilities ips, routes in network form", macvlan(&v1.SimpleMacvlanConfig{MTU: 9000, Mode: "Passthru",
			IPAMConfig: &v1.IPAMConfig{Type: "Static", StaticIPAMConfig: &v1.StaticIPAMConfig{
				Routes: []v1.StaticIPAMRoute{{Destination: "10.1.2.3/8", Gateway: "192.0.2.1"}, {Destination: "0.0.0.0/0"}},
				DNS:    &v1.StaticIPAMDNS{Nameservers: []string{"192.0.2.53"}, Domain: "example.org", Search: []string{"a.example.org"}}}}}),
			`{ "cniVersion": "0.3.1", "type": "macvlan", "mode": "passthru", "mtu": 9000, "ipam": {"type":"static","routes":[{"dst":"10.0.0.0/8","gw":"192.0.2.1"},{"dst":"0.0.0.0/0"}],"dns":{"nameservers":["192.0.2.53"],"domain":"example.org","search":["a.example.org"]},"capabilities":["ips"]} }`},
		{"static without staticIPAMConfig", macvlan(&v1.SimpleMacvlanConfig{IPAMConfig: &v1.IPAMConfig{Type: "Static"}}),
			`{ "cniVersion": "0.3.1", "type": "macvlan", "ipam": {"type":"static","capabilities":["ips"]} }`},
		{"legacy lowercase spellings", v1.NetworkDefinitionSpec{Type: "simplemacvlan", Name: "n", SimpleMacvlanConfig: &v1.SimpleMacvlanConfig{Mode: "vepa", IPAMConfig: &v1.IPAMConfig{Type: "dhcp"}}},
			`{ "cniVersion": "0.3.1", "type": "macvlan", "mode": "vepa", "ipam": { "type": "dhcp" } }`},
		{"plexus-ipam", macvlan(&v1.SimpleMacvlanConfig{Master: "ens3", IPAMConfig: &v1.IPAMConfig{Type: "PlexusIPAM", PlexusIPAMConfig: &v1.PlexusIPAMConfig{
			Range: "198.51.100.0/24", RangeStart: "198.51.100.100", Exclude: []string{"198.51.100.128/25"}, Gateway: "198.51.100.1", NetworkName: "tomcat-net"}}}),
			`{ "cniVersion": "0.3.1", "type": "macvlan", "master": "ens3", "ipam": {"type":"plexus-ipam","range":"198.51.100.0/24","range_start":"198.51.100.100","exclude":["198.51.100.128/25"],"gateway":"198.51.100.1","network_name":"tomcat-net"} }`},
		{"raw is verbatim", v1.NetworkDefinitionSpec{Type: "raw", Name: "r", RawCNIConfig: "{\"cniVersion\":\"0.3.1\",  \"type\":\"bridge\"}"},
			"{\"cniVersion\":\"0.3.1\",  \"type\":\"bridge\"}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Render(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if r.Config != tt.want {
				t.Errorf("config\n got %s\nwant %s", r.Config, tt.want)
			}
		})
	}
}

func TestRenderTarget(t *testing.T) {
	r, err := Render(v1.NetworkDefinitionSpec{Type: "Raw", Name: "n", RawCNIConfig: `{"type":"bridge"}`})
	if err != nil || r.Namespace != "default" || r.Name != "n" {
		t.Errorf("Render = %+v, %v; want default/n", r, err)
	}
}

func TestRenderErrors(t *testing.T) {
	static := func(s *v1.StaticIPAMConfig) v1.NetworkDefinitionSpec {
		return macvlan(&v1.SimpleMacvlanConfig{IPAMConfig: &v1.IPAMConfig{Type: "Static", StaticIPAMConfig: s}})
	}
	tests := []struct {
		name string
		spec v1.NetworkDefinitionSpec
		want string
	}{
		{"unknown type", v1.NetworkDefinitionSpec{Type: "OVNKubernetes", Name: "n"}, "[unknown or unsupported NetworkType: OVNKubernetes]"},
		{"raw without name", v1.NetworkDefinitionSpec{Type: "Raw", RawCNIConfig: "{}"}, "[Additional Network Name cannot be nil]"},
		{"raw not an object", v1.NetworkDefinitionSpec{Type: "Raw", Name: "n", RawCNIConfig: "[1]"},
			"[failed to Unmarshal RawCNIConfig: json: cannot unmarshal array into Go value of type map[string]interface {}]"},
		{"macvlan mode", macvlan(&v1.SimpleMacvlanConfig{Mode: "Loud"}), "[invalid Macvlan mode: Loud]"},
		{"ipam type", macvlan(&v1.SimpleMacvlanConfig{IPAMConfig: &v1.IPAMConfig{Type: "host-local"}}), "[invalid IPAM type: host-local]"},
		{"static values, every error", static(&v1.StaticIPAMConfig{
			Addresses: []v1.StaticIPAMAddress{{Address: "192.0.2.300/24", Gateway: "gw"}},
			Routes:    []v1.StaticIPAMRoute{{Destination: "nowhere", Gateway: "192.0.2.1"}}}),
			"[invalid static address: invalid CIDR address: 192.0.2.300/24 invalid gateway: gw invalid route destination: invalid CIDR address: nowhere]"},
		{"name syntax", v1.NetworkDefinitionSpec{Type: "Raw", Name: "Bad_Name", RawCNIConfig: `{"type":"bridge"}`}, "invalid name Bad_Name: "},
		{"plexus-ipam without settings", macvlan(&v1.SimpleMacvlanConfig{IPAMConfig: &v1.IPAMConfig{Type: "PlexusIPAM"}}),
			"[invalid plexusIPAMConfig: required for IPAM type PlexusIPAM]"},
		{"plexus-ipam bad range", macvlan(&v1.SimpleMacvlanConfig{IPAMConfig: &v1.IPAMConfig{Type: "PlexusIPAM", PlexusIPAMConfig: &v1.PlexusIPAMConfig{Range: "10.0.0.0/33"}}}),
			"invalid plexusIPAMConfig: plexusIPAMConfig.range"},
		{"raw config the NAD validator refuses", v1.NetworkDefinitionSpec{Type: "Raw", Name: "n", RawCNIConfig: `{"cniVersion":"0.3.1"}`},
			"[rendered NAD: spec.config.type: is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Render(tt.spec)
			if err == nil {
				t.Fatal("Render succeeded, want an error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "invalid Additional Network Configuration: ") || !strings.Contains(msg, tt.want) {
				t.Errorf("error = %q, want it to contain %q", msg, tt.want)
			}
		})
	}
}

func TestCanonicalize(t *testing.T) {
	spec := v1.NetworkDefinitionSpec{Type: "SIMPLEMACVLAN", SimpleMacvlanConfig: &v1.SimpleMacvlanConfig{Mode: "passthru", IPAMConfig: &v1.IPAMConfig{Type: "static"}}}
	notes := Canonicalize(&spec)
	if spec.Type != "SimpleMacvlan" || spec.SimpleMacvlanConfig.Mode != "Passthru" || spec.SimpleMacvlanConfig.IPAMConfig.Type != "Static" {
		t.Errorf("Canonicalize left %+v %+v", spec, spec.SimpleMacvlanConfig)
	}
	if len(notes) != 3 {
		t.Errorf("notes = %q, want 3", notes)
	}
	if notes := Canonicalize(&spec); len(notes) != 0 {
		t.Errorf("canonical spec gave notes %q", notes)
	}
}
