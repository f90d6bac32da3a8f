package install

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
)

func network(name string) Entry {
	return Entry{Name: name, Kind: KindNetwork, Type: "bridge", Primary: &Primary{Path: "/d/" + name}}
}

func multusEntry(name, typ string, m *MultusConf) Entry {
	return Entry{Name: name, Kind: KindMultus, Type: typ, Multus: m}
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

// TestDecide: the first file by name is what the runtime uses; plexus
// wraps only a plain network, never Multus nor itself, and says why not.
func TestDecide(t *testing.T) {
	cluster := network("10-cluster.conflist")
	calico := network("20-calico.conf")
	shim := multusEntry("00-multus.conf", "multus-shim", &MultusConf{Target: &calico})
	thin := multusEntry("00-multus.conf", "multus", &MultusConf{
		Keys: map[string]json.RawMessage{"delegates": raw(`[{"type":"flannel"}]`), "namespaceIsolation": raw("true")}})
	byName := multusEntry("00-multus.conf", "multus", &MultusConf{Keys: map[string]json.RawMessage{"clusterNetwork": raw(`"cbr0"`)}})
	self := Entry{Name: "01-plexus-old.conf", Kind: KindSelf, Type: "plexus"}
	wrapsSelf := multusEntry("00-multus.conf", "multus-shim", &MultusConf{WrapsSelf: true})
	broken := Entry{Name: "10-broken.conf", Kind: KindUnreadable, Err: errors.New("truncated")}
	const own, early = "00-plexus.conflist", "00-00-plexus.conflist"

	for _, tc := range []struct {
		name     string
		entries  []Entry
		own      string
		takeOver bool
		// want is the wrapped path (or "extra" for a Primary without a
		// path), else the reason; file the file named.
		want, file string
		moved      []string
	}{
		{"plain network", []Entry{cluster}, own, false, "/d/10-cluster.conflist", "", nil},
		{"own file is ignored", []Entry{{Name: own, Kind: KindSelf}, cluster}, own, false, "/d/10-cluster.conflist", "", nil},
		{"self after own is skipped", []Entry{self, cluster}, own, false, "/d/10-cluster.conflist", "", nil},
		{"nothing yet", nil, own, false, ReasonNoPrimary, "", nil},
		{"unreadable first network", []Entry{broken, calico}, own, false, ReasonUnreadable, "10-broken.conf", nil},
		{"multus-shim first", []Entry{shim, cluster}, own, false, ReasonMetaPlugin, "00-multus.conf", nil},
		{"multus first", []Entry{thin, cluster}, own, false, ReasonMetaPlugin, "00-multus.conf", nil},
		{"multus after own", []Entry{shim, cluster}, early, false, ReasonMetaPlugin, "00-multus.conf", nil},
		{"a network sorts first", []Entry{network("00-calico.conflist"), cluster}, own, false, ReasonShadowed, "00-calico.conflist", nil},
		{"an old plexus file sorts first", []Entry{{Name: "00-a-plexus.conflist", Kind: KindSelf}, cluster}, own, false,
			ReasonShadowed, "00-a-plexus.conflist", nil},
		{"an unreadable file sorts first", []Entry{{Name: "00-a.conf", Kind: KindUnreadable}, cluster}, own, false,
			ReasonShadowed, "00-a.conf", nil},
		{"take-over: shim's clusterNetwork file", []Entry{shim, cluster, calico}, early, true,
			"/d/20-calico.conf", "", []string{"00-multus.conf"}},
		{"take-over: thin's delegates", []Entry{thin, cluster}, early, true, "extra", "", []string{"00-multus.conf"}},
		{"take-over: clusterNetwork by name", []Entry{byName, cluster}, early, true, "extra", "", []string{"00-multus.conf"}},
		{"take-over: Multus wrapping plexus falls back to the first network", []Entry{wrapsSelf, cluster}, early, true,
			"/d/10-cluster.conflist", "", []string{"00-multus.conf"}},
		{"take-over: own name sorts after Multus's", []Entry{shim, cluster}, own, true, ReasonTakeOver, "00-multus.conf", nil},
		{"take-over off: moved files are ignored", []Entry{moved(shim), cluster}, own, false, "/d/10-cluster.conflist", "", nil},
		{"take-over on: the moved file still says what to wrap", []Entry{moved(shim), cluster}, early, true,
			"/d/20-calico.conf", "", nil},
		{"take-over on without Multus", []Entry{cluster}, early, true, "/d/10-cluster.conflist", "", nil},
		{"take-over: a network sorting first still shadows", []Entry{network("00-0.conf"), shim}, early, true,
			ReasonShadowed, "00-0.conf", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.entries, tc.own, tc.takeOver)
			got := d.Reason
			if d.Primary != nil {
				got = d.Primary.Path
				if got == "" {
					got = "extra"
				}
				if d.Reason != "" || d.Message != "" {
					t.Errorf("a decision to write also says %s: %s", d.Reason, d.Message)
				}
			} else if d.Message == "" {
				t.Errorf("reason %s without a message", d.Reason)
			}
			if got != tc.want || d.File != tc.file || !slices.Equal(d.MoveAside, tc.moved) {
				t.Errorf("Decide = %q file %q moves %v (%s); want %q file %q moves %v", got, d.File, d.MoveAside, d.Message,
					tc.want, tc.file, tc.moved)
			}
		})
	}
}

func moved(e Entry) Entry {
	e.Name += MovedSuffix
	e.Moved = true
	return e
}

// A take-over carries Multus's keys over: its delegates (thin) or its
// clusterNetwork name (thick), and the keys plexus reads with the same
// meaning; delegates are dropped when clusterNetwork is set, as Multus does.
func TestDecideCarriesMultusKeys(t *testing.T) {
	thin := multusEntry("00-multus.conf", "multus", &MultusConf{CNIVersion: "0.3.1", Keys: map[string]json.RawMessage{
		"delegates": raw(`[{"type":"flannel"}]`), "namespaceIsolation": raw("true")}})
	d := Decide([]Entry{thin}, TakeOverConfName, true)
	if d.Primary == nil || string(d.Primary.Extra["delegates"]) != `[{"type":"flannel"}]` ||
		string(d.Primary.Extra["namespaceIsolation"]) != "true" || d.Primary.CNIVersion != "0.3.1" {
		t.Fatalf("thin take-over: %+v", d.Primary)
	}
	target := network("10-cluster.conflist")
	shim := multusEntry("00-multus.conf", "multus-shim", &MultusConf{Target: &target,
		Keys: map[string]json.RawMessage{"delegates": raw(`[{"type":"x"}]`), "defaultNetworks": raw(`["sidecar"]`)}})
	d = Decide([]Entry{shim, target}, TakeOverConfName, true)
	if d.Primary == nil || d.Primary.Path != "/d/10-cluster.conflist" || d.Primary.Extra["delegates"] != nil ||
		string(d.Primary.Extra["defaultNetworks"]) != `["sidecar"]` {
		t.Fatalf("thick take-over: %+v", d.Primary)
	}
	if target.Primary.Extra != nil {
		t.Error("the take-over changed the entry it read")
	}
}
