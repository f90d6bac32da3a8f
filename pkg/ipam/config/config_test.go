package config

import (
	"fmt"
	"io/fs"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeFiles serves files from a map; other names do not exist.
type fakeFiles map[string]string

func (f fakeFiles) ReadFile(name string) ([]byte, error) {
	if s, ok := f[name]; ok {
		return []byte(s), nil
	}
	return nil, fmt.Errorf("open %s: %w", name, fs.ErrNotExist)
}

func load(t *testing.T, files fakeFiles, args Args, ipam string, extra ...string) (*Conf, error) {
	t.Helper()
	stdin := `{"cniVersion":"1.1.0","name":"net-a",` + strings.Join(append(extra, ""), ",") + `"ipam":` + ipam + `}`
	return Loader{Files: files, DefaultPaths: []string{"/default/plexus-ipam.conf"}}.Load([]byte(stdin), args)
}

// summary renders what a Conf means, for comparison.
func summary(c *Conf) []string {
	var out []string
	for i, s := range c.Slots {
		for _, r := range s.Ranges {
			line := fmt.Sprintf("slot%d %s-%s/%d size=%d space=%q", i, r.First, r.Last, r.Subnet.Bits(), r.Size(), c.Space(r))
			if r.Gateway.IsValid() {
				line += " gw=" + r.Gateway.String()
			}
			if s.Want.IsValid() {
				line += " want=" + s.Want.String()
			}
			out = append(out, line)
		}
	}
	return out
}

func TestLoadRanges(t *testing.T) {
	tests := []struct {
		name string
		ipam string
		want []string
	}{{
		name: "S4 first-last/prefix with gateway",
		ipam: `{"type":"plexus-ipam","range":"192.168.91.100-192.168.91.110/24","gateway":"192.168.91.1"}`,
		want: []string{`slot0 192.168.91.100-192.168.91.110/24 size=11 space="net:" gw=192.168.91.1`},
	}, {
		name: "CIDR with host bits, range_start, range_end, exclude",
		ipam: `{"type":"whereabouts","range":"10.0.0.77/24","range_start":"10.0.0.10","range_end":"10.0.0.20","exclude":["10.0.0.12/31","10.0.0.15"]}`,
		want: []string{`slot0 10.0.0.10-10.0.0.20/24 size=8 space="net:"`},
	}, {
		name: "dual stack ipRanges, gateway on its family only, network_name, overlap off",
		ipam: `{"type":"plexus-ipam","network_name":"blue","enable_overlapping_ranges":false,"gateway":"192.0.2.1",
			"ipRanges":[{"range":"192.0.2.0/24"},{"range":"2001:db8::/64","range_end":"2001:db8::ff"}]}`,
		want: []string{
			`slot0 192.0.2.0-192.0.2.255/24 size=253 space="net:blue range:192.0.2.0/24" gw=192.0.2.1`,
			`slot1 2001:db8::-2001:db8::ff/64 size=255 space="net:blue range:2001:db8::/64"`,
		},
	}, {
		name: "host-local ranges: one slot per set, several ranges per set",
		ipam: `{"type":"plexus-ipam","ranges":[[{"subnet":"198.51.100.0/24","rangeStart":"198.51.100.10","rangeEnd":"198.51.100.11","gateway":"198.51.100.1"},
			{"subnet":"203.0.113.0/24"}],[{"subnet":"2001:db8:1::/64"}]]}`,
		want: []string{
			`slot0 198.51.100.10-198.51.100.11/24 size=2 space="net:" gw=198.51.100.1`,
			`slot0 203.0.113.0-203.0.113.255/24 size=254 space="net:"`,
			`slot1 2001:db8:1::-2001:db8:1:0:ffff:ffff:ffff:ffff/64 size=18446744073709551615 space="net:"`,
		},
	}, {
		name: "deprecated host-local top-level subnet",
		ipam: `{"type":"plexus-ipam","subnet":"192.0.2.0/28","rangeStart":"192.0.2.5"}`,
		want: []string{`slot0 192.0.2.5-192.0.2.15/28 size=10 space="net:"`},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, nil, Args{}, tt.ipam)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if diff := cmp.Diff(tt.want, summary(c)); diff != "" {
				t.Errorf("slots (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadOtherKeys(t *testing.T) {
	ipam := `{"type":"plexus-ipam","range":"192.0.2.0/24","log_file":"/tmp/x.log","log_level":"debug",
		"kubernetes":{"kubeconfig":"/etc/kc","namespace":"plexus"},
		"etcd_host":"192.0.2.8:2379,https://192.0.2.9:2379","etcd_username":"u","etcd_password":"p",
		"etcd_key_file":"/k","etcd_cert_file":"/c","etcd_ca_cert_file":"/ca",
		"routes":[{"dst":"0.0.0.0/0"},{"dst":"198.51.100.0/24","gw":"192.0.2.254"}],
		"dns":{"nameservers":["192.0.2.53"],"search":["example.org"]}}`
	c, err := load(t, nil, Args{PodName: "p"}, ipam, `"cni.dev/valid-attachments":[{"containerID":"c1","ifname":"net1"}]`)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	got := fmt.Sprintf("%s %s %s %s %s %s %+v routes=%d/%s dns=%v valid=%v pod=%s",
		c.CNIVersion, c.Name, c.LogFile, c.LogLevel, c.Kubeconfig, c.Namespace, *c.Etcd,
		len(c.Routes), c.Routes[1].GW, c.DNS.Nameservers, c.ValidAttachments, c.Pod.PodName)
	want := "1.1.0 net-a /tmp/x.log debug /etc/kc plexus {Endpoints:[https://192.0.2.8:2379 https://192.0.2.9:2379] " +
		"Username:u Password:p KeyFile:/k CertFile:/c CACertFile:/ca} routes=2/192.0.2.254 dns=[192.0.2.53] valid=[{c1 net1}] pod=p"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if !c.OverlappingRanges {
		t.Error("enable_overlapping_ranges must default to true")
	}
}

func TestConfigurationPath(t *testing.T) {
	files := fakeFiles{
		"/etc/flat.conf":            `{"kubernetes":{"kubeconfig":"/from/file","namespace":"file-ns"},"log_level":"debug","network_name":"file","gateway":"192.0.2.1"}`,
		"/default/plexus-ipam.conf": `{"kubernetes":{"kubeconfig":"/from/default"}}`,
	}
	c, err := load(t, files, Args{}, `{"type":"plexus-ipam","range":"192.0.2.0/24","configuration_path":"/etc/flat.conf","network_name":"nad","kubernetes":{"namespace":"nad-ns"}}`)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	got := []string{c.Kubeconfig, c.Namespace, c.LogLevel, c.NetworkName, c.Slots[0].Ranges[0].Gateway.String()}
	if diff := cmp.Diff([]string{"/from/file", "nad-ns", "debug", "nad", "192.0.2.1"}, got); diff != "" {
		t.Errorf("merged keys (-want +got):\n%s", diff)
	}
	// A missing configuration_path is not an error, and no default file is read instead.
	c, err = load(t, files, Args{}, `{"type":"plexus-ipam","range":"192.0.2.0/24","configuration_path":"/missing"}`)
	if err != nil || c.Kubeconfig != "" {
		t.Errorf("missing file: kubeconfig %q, err %v; want none", c.Kubeconfig, err)
	}
	// Without configuration_path the default file is used.
	c, err = load(t, files, Args{}, `{"type":"plexus-ipam","range":"192.0.2.0/24"}`)
	if err != nil || c.Kubeconfig != "/from/default" {
		t.Errorf("default file: kubeconfig %q, err %v; want /from/default", c.Kubeconfig, err)
	}
	_, err = load(t, fakeFiles{"/bad": `[1]`}, Args{}, `{"type":"plexus-ipam","range":"192.0.2.0/24","configuration_path":"/bad"}`)
	if err == nil || !strings.Contains(err.Error(), "ipam.configuration_path") {
		t.Errorf("malformed file: err %v, want one naming ipam.configuration_path", err)
	}
}

func TestRequestedAddresses(t *testing.T) {
	dual := `{"type":"plexus-ipam","gateway":"192.0.2.1","ipRanges":[{"range":"192.0.2.0/24","exclude":["192.0.2.50"]},{"range":"2001:db8::/64"}]}`
	tests := []struct {
		name  string
		args  Args
		extra string
		want  []string // wanted address per slot, or the error's substring
	}{
		{"runtimeConfig wins", Args{IPs: []string{"192.0.2.9"}}, `"runtimeConfig":{"ips":["2001:db8::7/64","192.0.2.7/24"]},"args":{"cni":{"ips":["192.0.2.8"]}}`, []string{"192.0.2.7", "2001:db8::7"}},
		{"args.cni.ips next", Args{IPs: []string{"192.0.2.9"}}, `"args":{"cni":{"ips":["192.0.2.8"]}}`, []string{"192.0.2.8", "invalid IP"}},
		{"CNI_ARGS IP last", Args{IPs: []string{"192.0.2.9"}}, "", []string{"192.0.2.9", "invalid IP"}},
		{"outside every range", Args{IPs: []string{"198.51.100.1"}}, "", []string{"not inside any configured range"}},
		{"excluded", Args{IPs: []string{"192.0.2.50"}}, "", []string{"is excluded"}},
		{"gateway", Args{IPs: []string{"192.0.2.1"}}, "", []string{"is the gateway"}},
		{"network", Args{IPs: []string{"192.0.2.0"}}, "", []string{"network address"}},
		{"wrong prefix", Args{IPs: []string{"192.0.2.7/16"}}, "", []string{"prefix length differs"}},
		{"too many", Args{IPs: []string{"192.0.2.7", "192.0.2.8"}}, "", []string{"more addresses requested than ranges"}},
		{"garbage", Args{IPs: []string{"nope"}}, "", []string{"CNI_ARGS IP[0]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var extra []string
			if tt.extra != "" {
				extra = append(extra, tt.extra)
			}
			c, err := load(t, nil, tt.args, dual, extra...)
			if err != nil {
				if len(tt.want) != 1 || !strings.Contains(err.Error(), tt.want[0]) {
					t.Fatalf("Load: %v, want %v", err, tt.want)
				}
				return
			}
			var got []string
			for _, s := range c.Slots {
				got = append(got, s.Want.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("wanted addresses (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct{ ipam, want string }{
		{`{"type":"host-local","range":"192.0.2.0/24"}`, `ipam.type: invalid value "host-local"`},
		{`{"type":"plexus-ipam"}`, "ipam.range: is required"},
		{`{"type":"plexus-ipam","range":"192.0.2.0/24","range_start":"192.0.3.1"}`, `range_start: invalid value "192.0.3.1"`},
		{`{"type":"plexus-ipam","range":"192.0.2.0/24","range_end":"10.0.0.1"}`, `range_end: invalid value "10.0.0.1"`},
		{`{"type":"plexus-ipam","range":"192.0.2.10-192.0.2.20/24","range_start":"192.0.2.5"}`, `range_start: invalid value "192.0.2.5"`},
		{`{"type":"plexus-ipam","range":"192.0.3.10-192.0.2.20/24"}`, `ipam.range: invalid value "192.0.3.10-192.0.2.20/24"`},
		{`{"type":"plexus-ipam","range":"192.0.2.0/24","exclude":["x"]}`, `ipam.exclude[0]: invalid value "x"`},
		{`{"type":"plexus-ipam","range":"nope"}`, `ipam.range: invalid value "nope"`},
		{`{"type":"plexus-ipam","ranges":[[{"subnet":"192.0.2.0/24","rangeEnd":"192.0.3.1"}]]}`, `ipam.ranges[0][0].rangeEnd: invalid value "192.0.3.1"`},
		{`{"type":"plexus-ipam","ranges":[[]]}`, `ipam.ranges[0]: empty range set`},
		{`"x"`, `ipam: invalid value`},
	}
	for _, tt := range tests {
		_, err := load(t, nil, Args{}, tt.ipam)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ipam %s: err %v, want it to contain %q", tt.ipam, err, tt.want)
		}
	}
	if _, err := (Loader{Files: fakeFiles{}}).Load([]byte(`{"name":"x"}`), Args{}); err == nil || !strings.Contains(err.Error(), "ipam: is required") {
		t.Errorf("no ipam: err %v", err)
	}
}

func TestParseArgs(t *testing.T) {
	a, err := ParseArgs("IgnoreUnknown=1;K8S_POD_NAMESPACE=tomcat;K8S_POD_NAME=web-0;K8S_POD_UID=u-1;IP=192.0.2.7/24, 2001:db8::7;;")
	if err != nil {
		t.Fatal(err)
	}
	want := Args{PodNamespace: "tomcat", PodName: "web-0", PodUID: "u-1", IPs: []string{"192.0.2.7/24", "2001:db8::7"}}
	if diff := cmp.Diff(want, a); diff != "" {
		t.Errorf("ParseArgs (-want +got):\n%s", diff)
	}
	if _, err := ParseArgs("K8S_POD_NAME"); err == nil || !strings.Contains(err.Error(), "CNI_ARGS") {
		t.Errorf("malformed pair: err %v", err)
	}
}

// Whereabouts' object names: the masked range (host bits dropped) or the
// address with ':' and '/' spelled '-', after network_name and '-'.
func TestWhereaboutsNames(t *testing.T) {
	for _, tc := range []struct {
		net, cidr, want string
	}{
		{"", "10.0.0.0/24", "10.0.0.0-24"},
		{"", "10.0.0.77/24", "10.0.0.0-24"},
		{"blue", "10.0.0.0/24", "blue-10.0.0.0-24"},
		{"", "2001:db8::/64", "2001-db8---64"},
	} {
		if got := WhereaboutsPoolName(tc.net, netip.MustParsePrefix(tc.cidr)); got != tc.want {
			t.Errorf("WhereaboutsPoolName(%q, %s) = %q, want %q", tc.net, tc.cidr, got, tc.want)
		}
	}
	for _, tc := range []struct {
		net, addr, want string
	}{
		{"", "10.0.0.5", "10.0.0.5"},
		{"blue", "10.0.0.5", "blue-10.0.0.5"},
		{"", "2001:db8::", "2001-db8--0"},
		{"blue", "2001:db8::5", "blue-2001-db8--5"},
	} {
		if got := WhereaboutsReservationName(tc.net, netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("WhereaboutsReservationName(%q, %s) = %q, want %q", tc.net, tc.addr, got, tc.want)
		}
	}
}
