package netselect

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func FuzzParseNetworks(f *testing.F) {
	seeds := []string{
		"", "a", "a,b", "ns/a@net1", "net1,", "ns/", "a/b/c", "a@b@c",
		`[{"name":"a"}]`,
		`[{"name":"a","namespace":"b","interface":"x","ips":["10.0.0.1/24"],"mac":"02:00:00:00:00:01"}]`,
		`[{"name":"a","default-route":[]},{"name":"b","cni-args":{"n":1e3,"s":"x"}}]`,
		`[{"name":"a","portMappings":[{"hostPort":1,"containerPort":2,"protocol":"sctp","hostIP":"::1"}],"bandwidth":{}}]`,
		`[{"name":"a","infiniband-guid":"24:8a:07:03:00:8d:ae:2f","deviceID":"x","ipam-claim-reference":"c"}]`,
		`[{"name":"a","default-route":["::ffff:1.2.3.4"],"bandwidth":{"ingressRate":1,"ingressBurst":2}}]`,
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		sels, err := ParseNetworks(value, "pod-ns")
		if err != nil || sels == nil {
			return
		}
		b, err := json.Marshal(sels)
		if err != nil {
			t.Fatalf("marshal %+v: %v", sels, err)
		}
		again, err := ParseNetworks(string(b), "other-ns")
		if err != nil {
			t.Fatalf("re-parse of %s (from %q): %v", b, value, err)
		}
		if diff := cmp.Diff(sels, again); diff != "" {
			t.Fatalf("round trip of %q via %s changed (-first +second):\n%s", value, b, diff)
		}
	})
}
