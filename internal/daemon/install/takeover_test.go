package install

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/containernetworking/cni/libcni"

	"github.com/plexus-cni/plexus/internal/config"
)

const clusterConf = `{"cniVersion":"1.0.0","name":"cluster","plugins":[{"type":"bridge","bridge":"cni0"},
	{"type":"portmap","capabilities":{"portMappings":true}}]}`

// multusShim is the file thick Multus writes: its clusterNetwork is the path
// of the network it wraps.
func multusShim(clusterNetwork string) string {
	return `{"cniVersion":"1.0.0","name":"multus-cni-network","type":"multus-shim","logLevel":"verbose",
		"capabilities":{"portMappings":true},"clusterNetwork":"` + clusterNetwork + `"}`
}

// runtimeFirst is the file the runtime uses: libcni's order, first file.
func runtimeFirst(t *testing.T, dir string) string {
	t.Helper()
	files, err := libcni.ConfFiles(dir, []string{".conf", ".conflist", ".json"})
	if err != nil || len(files) == 0 {
		t.Fatalf("conf dir %s: %v %v", dir, files, err)
	}
	return filepath.Base(files[0])
}

// With Multus's file first, plexusd writes nothing and says why; the
// runtime keeps using Multus.
func TestMultusFirstKeepsPlexusUnready(t *testing.T) {
	in, dir := newInstaller(t)
	primary := filepath.Join(dir, "10-cluster.conflist")
	write(t, primary, clusterConf)
	write(t, filepath.Join(dir, "00-multus.conf"), multusShim(primary))
	var changes []State
	in.OnChange = func(st State) { changes = append(changes, st) }
	st := in.Sync()
	if st.Ready() || st.Reason != ReasonMetaPlugin || st.File != "00-multus.conf" ||
		!strings.Contains(st.Waiting, "00-multus.conf") || !strings.Contains(st.Waiting, "takeOverMultus") {
		t.Fatalf("state with Multus first = %+v, want not ready, %s naming 00-multus.conf", st, ReasonMetaPlugin)
	}
	absent(t, in.Conf.Path())
	in.Sync()
	if len(changes) != 1 {
		t.Errorf("%d state changes for one situation, want 1 (one event per change): %+v", len(changes), changes)
	}
	// A conf file that sorts before plexus's own: plexus is not in use.
	os.Remove(filepath.Join(dir, "00-multus.conf"))
	write(t, filepath.Join(dir, "00-calico.conflist"), `{"cniVersion":"1.0.0","name":"k8s","plugins":[{"type":"calico"}]}`)
	if st := in.Sync(); st.Ready() || st.Reason != ReasonShadowed || st.File != "00-calico.conflist" {
		t.Fatalf("state with a network sorting first = %+v, want %s", st, ReasonShadowed)
	}
	absent(t, in.Conf.Path())
}

// The take-over: plexus's file (sorting first) wraps the network Multus
// wrapped, Multus's file is moved aside, a file Multus writes back is moved
// aside too, and throughout the runtime's first file is Multus's or plexus's,
// never the bare cluster network nor nothing. Rolling back is a rename.
func TestTakeOverMultus(t *testing.T) {
	in, dir := newInstaller(t)
	in.Conf.Name = TakeOverConfName
	in.TakeOverMultus = true
	primary := filepath.Join(dir, "10-cluster.conflist")
	write(t, primary, clusterConf)
	multus := filepath.Join(dir, "00-multus.conf")
	write(t, multus, multusShim(primary))

	var stop atomic.Bool
	var wg sync.WaitGroup
	var seen sync.Map
	wg.Add(1)
	go func() { // the runtime, reading the conf dir while plexusd switches it
		defer wg.Done()
		for !stop.Load() {
			files, err := libcni.ConfFiles(dir, []string{".conf", ".conflist", ".json"})
			if err != nil || len(files) == 0 {
				seen.Store("no configuration", true)
				continue
			}
			seen.Store(filepath.Base(files[0]), true)
		}
	}()
	st := in.Sync()
	for i := 0; i < 20; i++ { // Multus's daemon writes its file back, wrapping plexus
		write(t, multus, multusShim(in.Conf.Path()))
		in.Sync()
	}
	stop.Store(true)
	wg.Wait()
	seen.Range(func(k, _ any) bool {
		if k != "00-multus.conf" && k != TakeOverConfName {
			t.Errorf("during the switch the runtime's first file was %v", k)
		}
		return true
	})
	if !st.Ready() || st.Moved != "00-multus.conf" {
		t.Fatalf("take-over state = %+v, want ready, 00-multus.conf moved", st)
	}
	if first := runtimeFirst(t, dir); first != TakeOverConfName {
		t.Fatalf("after the take-over the runtime uses %s", first)
	}
	p := written(t, in)
	if p["clusterNetwork"] != primary || p["logLevel"] != nil {
		t.Errorf("plexus wraps %v (plugin %v), want Multus's network %s", p["clusterNetwork"], p, primary)
	}
	absent(t, multus)
	original, err := os.ReadFile(multus + MovedSuffix)
	if err != nil || string(original) != multusShim(primary) {
		t.Fatalf("Multus's original file moved aside: %q %v", original, err)
	}
	// Rollback: remove plexus's file, rename Multus's back.
	if err := os.Remove(in.Conf.Path()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(multus+MovedSuffix, multus); err != nil {
		t.Fatal(err)
	}
	if first := runtimeFirst(t, dir); first != "00-multus.conf" {
		t.Errorf("after the rollback the runtime uses %s", first)
	}
}

// Thin Multus embeds its network as delegates[0]: the plexus file carries
// it over, with Multus's keys, and is a valid plexus configuration.
func TestTakeOverThinMultus(t *testing.T) {
	in, dir := newInstaller(t)
	in.Conf.Name, in.TakeOverMultus = TakeOverConfName, true
	write(t, filepath.Join(dir, "00-multus.conf"), `{"cniVersion":"0.3.1","name":"multus-cni-network","type":"multus",
		"kubeconfig":"/etc/cni/net.d/multus.d/multus.kubeconfig","namespaceIsolation":true,
		"delegates":[{"cniVersion":"0.3.1","name":"cbr0","type":"flannel","delegate":{"isDefaultGateway":true}}]}`)
	write(t, filepath.Join(dir, "10-flannel.conflist"), flannel)
	if st := in.Sync(); !st.Ready() {
		t.Fatalf("state = %+v", st)
	}
	raw, err := os.ReadFile(in.Conf.Path())
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Plugins []json.RawMessage `json:"plugins"`
	}
	if err := json.Unmarshal(raw, &list); err != nil || len(list.Plugins) != 1 {
		t.Fatalf("written %s: %v", raw, err)
	}
	c, err := config.Parse(list.Plugins[0])
	if err != nil {
		t.Fatalf("the written plugin is not a valid plexus configuration: %v\n%s", err, raw)
	}
	if len(c.Delegates) != 1 || c.ClusterNetwork != "" || !c.NamespaceIsolation || c.Kubeconfig == "/etc/cni/net.d/multus.d/multus.kubeconfig" {
		t.Errorf("written plugin %s, want Multus's delegates and namespaceIsolation, not its kubeconfig", list.Plugins[0])
	}
}
