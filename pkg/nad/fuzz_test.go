package nad

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func FuzzParse(f *testing.F) {
	seeds := []string{
		s1Config, s4Config, `{"type":"a"}`, `{"plugins":[{"type":"a","capabilities":{"ips":true}}]}`,
		`{"cniVersions":["0.4.0","1.0.0"],"name":"x","plugins":[{"type":"a","ipam":{"type":"host-local","ranges":[[{"subnet":"10.0.0.0/24"}]]}}]}`,
		`{"type":"m","ipam":{"type":"plexus-ipam","range":"10.0.0.5-10.0.0.9/24","range_start":"10.0.0.6","exclude":["10.0.0.7"]}}`,
		`{"type":"m","ipam":{"type":"static","addresses":[{"address":"10.0.0.5/24"}],"routes":[{"dst":"0.0.0.0/0"}]}}`,
		`{`, `[]`, `null`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, config []byte) {
		d, err := Parse(config, "fuzz-net")
		if err != nil {
			return
		}
		if _, err := d.List(); err != nil {
			t.Fatalf("List of parsed %q: %v", config, err)
		}
		again, err := Parse(d.Conflist, "other-net")
		if err != nil {
			t.Fatalf("re-parse of %s (from %q): %v", d.Conflist, config, err)
		}
		again.Source = d.Source
		if diff := cmp.Diff(d, again); diff != "" {
			t.Fatalf("Parse is not idempotent for %q (-first +second):\n%s", config, diff)
		}
	})
}
