package config

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/plexus-cni/plexus/pkg/fielderr"
	"github.com/plexus-cni/plexus/pkg/nad"
)

// fuzzFile is where the fuzzed configuration_path file lives; it is also
// the default path.
const fuzzFile = "/etc/cni/net.d/plexus-ipam.d/plexus-ipam.conf"

// Configurations of scenario S4 and the variants Whereabouts and
// host-local users write, with requests for addresses and flat files.
var ipamSeeds = []struct{ stdin, args, file string }{
	{`{"cniVersion":"0.3.0","name":"whereaboutsexample","type":"macvlan","master":"ens3","mode":"bridge",` +
		`"ipam":{"type":"whereabouts","range":"192.168.91.100-192.168.91.110/24","etcd_host":"192.168.91.8:2379",` +
		`"log_file":"/tmp/whereabouts.log","log_level":"debug","gateway":"192.168.91.1"}}`, "", ""},
	{`{"cniVersion":"0.3.0","name":"whereaboutsexample","type":"macvlan","ipam":{"type":"plexus-ipam",` +
		`"range":"192.168.91.100-192.168.91.110/24","gateway":"192.168.91.1","kubernetes":{"kubeconfig":"/etc/cni/net.d/plexus-ipam.d/plexus-ipam.kubeconfig"}}}`,
		"IgnoreUnknown=1;K8S_POD_NAMESPACE=tomcat;K8S_POD_NAME=web-0;K8S_POD_UID=u-1", ""},
	{`{"cniVersion":"1.1.0","name":"dual","ipam":{"type":"plexus-ipam","network_name":"blue","enable_overlapping_ranges":false,` +
		`"gateway":"192.0.2.1","ipRanges":[{"range":"192.0.2.0/24","exclude":["192.0.2.50","192.0.2.64/28"]},{"range":"2001:db8::/64","range_end":"2001:db8::ff"}]},` +
		`"runtimeConfig":{"ips":["192.0.2.7/24","2001:db8::7"]}}`, "", ""},
	{`{"cniVersion":"1.0.0","name":"hl","ipam":{"type":"plexus-ipam","ranges":[[{"subnet":"198.51.100.0/24","rangeStart":"198.51.100.10",` +
		`"rangeEnd":"198.51.100.11","gateway":"198.51.100.1"},{"subnet":"203.0.113.0/24"}],[{"subnet":"2001:db8:1::/64"}]],` +
		`"routes":[{"dst":"0.0.0.0/0"}],"dns":{"nameservers":["192.0.2.53"]}},"args":{"cni":{"ips":["203.0.113.9"]}}}`, "IP=198.51.100.10", ""},
	{`{"name":"flat","ipam":{"type":"plexus-ipam","range":"192.0.2.0/28","sticky":true,"configuration_path":"` + fuzzFile + `"}}`, "",
		`{"kubernetes":{"kubeconfig":"/etc/kc","namespace":"plexus"},"gateway":"192.0.2.1","etcd_host":"192.0.2.8:2379"}`},
	{`{"name":"legacy","ipam":{"type":"plexus-ipam","subnet":"192.0.2.0/28","rangeStart":"192.0.2.5","gateway":"192.0.2.1"}}`, "", ""},
	{`{"name":"x","ipam":{"type":"plexus-ipam","range":"::ffff:192.0.2.0/120"}}`, "IP=::ffff:192.0.2.9", ""},
	{`{"name":"x","ipam":{"type":"plexus-ipam","range":"192.0.2.0/32","gateway":"192.0.2.0"}}`, "", ""},
	{`{"name":"x","ipam":{"type":"plexus-ipam"}}`, "", ""},
	{`{"name":"x","ipam":"x"}`, "K8S_POD_NAME", ""},
	{`{"name":"x"}`, "", ""}, {`{`, "", ""}, {`null`, "", `[1]`},
}

func FuzzLoad(f *testing.F) {
	for _, s := range ipamSeeds {
		f.Add([]byte(s.stdin), s.args, []byte(s.file))
	}
	f.Fuzz(func(t *testing.T, stdin []byte, cniArgs string, file []byte) {
		args, err := ParseArgs(cniArgs)
		if err != nil {
			return
		}
		files := fakeFiles{}
		if len(file) > 0 {
			files[fuzzFile] = string(file)
		}
		l := Loader{Files: files, DefaultPaths: []string{fuzzFile}}
		c, err := l.Load(stdin, args)
		if err != nil {
			var fe *fielderr.Error
			if c != nil || !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("Load(%q) = %v, %v; want no configuration and an error naming a field", stdin, c, err)
			}
			checkLintAgrees(t, stdin)
			return
		}
		if diff := cmp.Diff(args, c.Pod); diff != "" {
			t.Fatalf("Pod differs from CNI_ARGS (-args +conf):\n%s", diff)
		}
		checkConf(t, stdin, c)
	})
}

// checkConf asserts what every accepted configuration guarantees to the
// allocator and the stores.
func checkConf(t *testing.T, stdin []byte, c *Conf) {
	t.Helper()
	if len(c.Slots) == 0 {
		t.Fatalf("accepted %q without a slot", stdin)
	}
	for i, s := range c.Slots {
		if len(s.Ranges) == 0 {
			t.Fatalf("accepted %q: slot %d has no range", stdin, i)
		}
		held := !s.Want.IsValid()
		for j, r := range s.Ranges {
			sub := r.Subnet
			if !sub.IsValid() || sub != sub.Masked() || sub.Addr().Is4In6() {
				t.Fatalf("accepted %q: slot %d range %d subnet %v is not a masked, unmapped prefix", stdin, i, j, sub)
			}
			if !sub.Contains(r.First) || !sub.Contains(r.Last) || r.Last.Less(r.First) {
				t.Fatalf("accepted %q: slot %d range %d bounds %v-%v not in order inside %v", stdin, i, j, r.First, r.Last, sub)
			}
			if r.Gateway.IsValid() && r.Gateway.BitLen() != sub.Addr().BitLen() {
				t.Fatalf("accepted %q: slot %d range %d gateway %v is not of %v's family", stdin, i, j, r.Gateway, sub)
			}
			if c.Space(r) == "" {
				t.Fatalf("accepted %q: slot %d range %d has no address space", stdin, i, j)
			}
			if s.Want.IsValid() && sub.Contains(s.Want) && r.Check(s.Want) == nil {
				held = true
			}
		}
		if !held {
			t.Fatalf("accepted %q: slot %d wants %v, which none of its ranges can hand out", stdin, i, s.Want)
		}
	}
	if c.Etcd != nil && len(c.Etcd.Endpoints) == 0 {
		t.Fatalf("accepted %q: etcd store without an endpoint", stdin)
	}
}

// checkLintAgrees asserts that a configuration Load refuses with no
// address requested is refused by the validation plexusctl lint runs as
// well, unless a node's flat file (which lint cannot see) could supply
// what is missing: lint must not pass a NAD every pod of which fails.
func checkLintAgrees(t *testing.T, stdin []byte) {
	t.Helper()
	var nc struct {
		IPAM json.RawMessage `json:"ipam"`
	}
	if json.Unmarshal(stdin, &nc) != nil || nad.ValidateIPAM(nc.IPAM, "ipam") != nil || respelledKey(nc.IPAM) {
		return
	}
	var typ struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(nc.IPAM, &typ) != nil || (typ.Type != TypePlexus && typ.Type != TypeWhereabouts) {
		return
	}
	plain, err := json.Marshal(map[string]json.RawMessage{"ipam": nc.IPAM})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (Loader{Files: anyFile(`{"range":"198.51.100.0/24"}`), DefaultPaths: []string{fuzzFile}}).Load(plain, Args{}); err != nil {
		t.Fatalf("lint accepts the ipam section of %q, plexus-ipam refuses it: %v", stdin, err)
	}
}

// anyFile serves the same content under every name.
type anyFile string

func (f anyFile) ReadFile(string) ([]byte, error) { return []byte(f), nil }

// respelledKey reports a key, at any depth, that differs from one plexus-ipam
// reads only in case ("Range"). Load reads such keys as encoding/json does,
// whatever their case; lint checks exact keys only. Not covered here.
func respelledKey(raw json.RawMessage) bool {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return false
	}
	return respelled(v)
}

func respelled(v any) bool {
	switch v := v.(type) {
	case map[string]any:
		for k, sub := range v {
			for _, known := range ipamKeys {
				if k != known && strings.EqualFold(k, known) {
					return true
				}
			}
			if respelled(sub) {
				return true
			}
		}
	case []any:
		for _, sub := range v {
			if respelled(sub) {
				return true
			}
		}
	}
	return false
}

// ipamKeys are the keys of the ipam section, its ranges, routes and dns.
var ipamKeys = []string{
	"type", "range", "range_start", "range_end", "exclude", "gateway", "ipRanges", "ranges", "subnet",
	"rangeStart", "rangeEnd", "network_name", "enable_overlapping_ranges", "sticky", "kubernetes",
	"kubeconfig", "namespace", "log_file", "log_level", "etcd_host", "etcd_username", "etcd_password",
	"etcd_key_file", "etcd_cert_file", "etcd_ca_cert_file", "routes", "dst", "gw", "mtu", "advmss",
	"priority", "table", "scope", "dns", "nameservers", "domain", "search", "options", "configuration_path",
}
