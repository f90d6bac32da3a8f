package cache

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/plexus-cni/plexus/internal/jsontest"
)

// fuzzID is the container whose record the fuzzed bytes claim to be.
const fuzzID = "0123abcd"

// Records as ADD writes them for the scenarios: S1 (cluster network and
// macvlan-conf), S2 (the same network twice), S4 (plexus-ipam), S5 (a
// secondary network as eth0), with runtime capabilities and CNI_ARGS.
var recordSeeds = []string{
	`{"version":1,"containerID":"0123abcd","netns":"/var/run/netns/cni-1","podNamespace":"default","podName":"samplepod","podUID":"u-1",` +
		`"cniArgs":[["IgnoreUnknown","1"],["K8S_POD_NAMESPACE","default"],["K8S_POD_NAME","samplepod"]],"attachments":[` +
		`{"name":"cbr0","ifname":"eth0","conflist":{"cniVersion":"1.0.0","name":"cbr0","plugins":[{"type":"flannel","delegate":{"isDefaultGateway":true}},{"type":"portmap","capabilities":{"portMappings":true}}]},` +
		`"capabilityArgs":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]},"default":true},` +
		`{"name":"default/macvlan-conf","ifname":"net1","conflist":{"cniVersion":"0.3.0","name":"macvlan-conf","plugins":[{"type":"macvlan","master":"eth0","mode":"bridge",` +
		`"ipam":{"type":"host-local","subnet":"192.168.1.0/24","rangeStart":"192.168.1.200","rangeEnd":"192.168.1.216","routes":[{"dst":"0.0.0.0/0"}],"gateway":"192.168.1.1"}}]}}]}`,
	`{"version":1,"containerID":"0123abcd","attachments":[` +
		`{"name":"default/macvlan-conf","ifname":"net1","conflist":{"cniVersion":"0.3.0","name":"macvlan-conf","plugins":[{"type":"macvlan"}]}},` +
		`{"name":"default/macvlan-conf","ifname":"net2","conflist":{"cniVersion":"0.3.0","name":"macvlan-conf","plugins":[{"type":"macvlan"}]}}]}`,
	`{"version":1,"containerID":"0123abcd","podNamespace":"tomcat","podName":"web-0","attachments":[{"name":"tomcat/macvlan-conf","ifname":"net1",` +
		`"conflist":{"cniVersion":"0.3.0","name":"whereaboutsexample","plugins":[{"type":"macvlan","master":"ens3","mode":"bridge",` +
		`"ipam":{"type":"plexus-ipam","range":"192.168.91.100-192.168.91.110/24","gateway":"192.168.91.1"}}]},` +
		`"capabilityArgs":{"ips":["192.168.91.105/24"],"mac":"02:00:00:00:00:01","bandwidth":{"ingressRate":1e6}}}]}`,
	`{"version":1,"containerID":"0123abcd","attachments":[{"name":"kube-system/macvlan-standalone-vlan0","ifname":"eth0","default":true,` +
		`"conflist":{"cniVersion":"1.0.0","name":"vlan0","plugins":[{"type":"macvlan","master":"bond0.100"}]}}]}`,
	`{"version":2,"containerID":"0123abcd","attachments":[{"ifname":"net1"}]}`,
	`{"version":1,"containerID":"other","attachments":[{"ifname":"net1"}]}`,
	`{"version":1,"containerID":"0123abcd","attachments":[{"name"`, ``, `null`, `[]`,
}

func FuzzDecode(f *testing.F) {
	for _, s := range recordSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Decode(data, fuzzID)
		if err != nil {
			if r != nil || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Decode(%q) = %v, %v; want no record and an error wrapping ErrCorrupt", data, r, err)
			}
			return
		}
		if r.Version != FormatVersion || r.ContainerID != fuzzID || len(r.Attachments) == 0 {
			t.Fatalf("accepted record %+v: want version %d, container %s, attachments", r, FormatVersion, fuzzID)
		}
		for i, a := range r.Attachments {
			if a.IfName == "" {
				t.Fatalf("accepted %q: attachment %d has no interface name, DEL cannot run it", data, i)
			}
			if _, err := libcni.ConfListFromBytes(a.Conflist); err != nil {
				t.Fatalf("accepted %q: attachment %d's conflist cannot be run by DEL: %v", data, i, err)
			}
		}
		checkRecordRoundTrip(t, r)
	})
}

// checkRecordRoundTrip asserts that r, saved again, reads back the same,
// and that saving is then a fixed point.
func checkRecordRoundTrip(t *testing.T, r *Record) {
	t.Helper()
	b, err := Encode(r)
	if err != nil {
		t.Fatalf("Encode(%+v): %v", r, err)
	}
	again, err := Decode(b, fuzzID)
	if err != nil {
		t.Fatalf("Decode of the re-encoded %s: %v", b, err)
	}
	// An empty list or map is stored as none: the same record (raw JSON
	// values are jsontest's, which says the same of empty ones).
	notRaw := cmp.FilterPath(func(p cmp.Path) bool { return p.Last().Type() != reflect.TypeFor[json.RawMessage]() }, cmpopts.EquateEmpty())
	if diff := cmp.Diff(r, again, jsontest.Comparer(), notRaw); diff != "" {
		t.Fatalf("round trip via %s changed the record (-first +second):\n%s", b, diff)
	}
	if b2, err := Encode(again); err != nil || !bytes.Equal(b, b2) {
		t.Fatalf("encoding is not a fixed point: %s then %s (%v)", b, b2, err)
	}
}
