package plugin

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/plexus-cni/plexus/internal/cache"
	"github.com/plexus-cni/plexus/internal/netstatus"
	"github.com/plexus-cni/plexus/pkg/netselect"
)

func (f *fixture) replug(networks string) (*Replugged, error) {
	f.api.pod.Annotations[netselect.NetworksAnnotation] = networks
	f.api.pod.Annotations[netselect.NetworkStatusAnnotation] = f.api.status
	return f.p.Replug(context.Background(), filepath.Join(f.dir, "state"), f.api.pod)
}

func (f *fixture) interfaces() []string {
	f.t.Helper()
	rec, err := cache.New(filepath.Join(f.dir, "state", "attachments")).Load("c0ffee")
	if err != nil || rec == nil {
		f.t.Fatalf("record: %v, %v", rec, err)
	}
	var out []string
	for _, a := range rec.Attachments {
		if a.Pending {
			f.t.Errorf("%s still pending", a.IfName)
		}
		out = append(out, a.IfName+"="+a.StatusName)
	}
	return out
}

func (f *fixture) statusInterfaces() []string {
	f.t.Helper()
	var entries []netstatus.Entry
	if err := json.Unmarshal([]byte(f.api.status), &entries); err != nil {
		f.t.Fatalf("network-status %q: %v", f.api.status, err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Interface+"="+e.Name)
	}
	return out
}

// A running pod's annotation changes: the new entry is attached, with the
// sandbox's CNI_ARGS, under the lowest free name; removing the first of
// two identical entries deletes net1 and leaves net2 alone; what stays is
// never touched again; network-status and the record follow.
func TestReplugAddsAndRemovesByEntry(t *testing.T) {
	f := newFixture(t, map[string]string{netselect.NetworksAnnotation: "a"})
	if err := f.add("uid-1"); err != nil {
		t.Fatal(err)
	}
	before := len(f.exec.seen())

	out, err := f.replug("a,a")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(out.Added, []string{"net2 (ns/a)"}) || len(out.Removed) != 0 {
		t.Fatalf("replug a,a: %+v", out)
	}
	if got := f.exec.seen()[before:]; !slices.Equal(got, []string{"ADD net2 a"}) {
		t.Fatalf("delegate calls %v, want only ADD net2 a", got)
	}
	if want := []string{"eth0=cluster", "net1=ns/a", "net2=ns/a"}; !slices.Equal(f.interfaces(), want) {
		t.Fatalf("record %v, want %v", f.interfaces(), want)
	}
	if want := []string{"eth0=cluster", "net1=ns/a", "net2=ns/a"}; !slices.Equal(f.statusInterfaces(), want) {
		t.Fatalf("network-status %v, want %v", f.statusInterfaces(), want)
	}

	before = len(f.exec.seen())
	out, err = f.replug("a")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(out.Removed, []string{"net1 (ns/a)"}) || len(out.Added) != 0 {
		t.Fatalf("replug a: %+v", out)
	}
	if got := f.exec.seen()[before:]; !slices.Equal(got, []string{"DEL net1 a"}) {
		t.Fatalf("delegate calls %v, want only DEL net1 a", got)
	}
	if want := []string{"eth0=cluster", "net2=ns/a"}; !slices.Equal(f.statusInterfaces(), want) {
		t.Fatalf("network-status %v, want %v", f.statusInterfaces(), want)
	}

	before = len(f.exec.seen())
	if out, err := f.replug("a"); err != nil || out != nil {
		t.Fatalf("an unchanged annotation: %+v, %v; want nothing done", out, err)
	}
	if got := f.exec.seen()[before:]; len(got) != 0 {
		t.Fatalf("an unchanged annotation ran %v", got)
	}
	// The sandbox's DEL deletes what hot-plug attached.
	before = len(f.exec.seen())
	if err := f.del(); err != nil {
		t.Fatal(err)
	}
	if got := f.exec.seen()[before:]; !slices.Equal(got, []string{"DEL net2 a", "DEL eth0 cluster"}) {
		t.Fatalf("sandbox DEL ran %v", got)
	}
}

// A hot-plug whose delegate fails rolls back only what it attached: the
// pod keeps its interfaces, record and network-status; the error names
// the attachment. Once the NAD is fixed, the next try succeeds.
func TestReplugFailureLeavesThePodAsItWas(t *testing.T) {
	f := newFixture(t, map[string]string{netselect.NetworksAnnotation: "a"})
	if err := f.add("uid-1"); err != nil {
		t.Fatal(err)
	}
	status := f.api.status
	f.exec.fail = map[string]string{"ADD net2 b": "no such master"}
	before := len(f.exec.seen())
	_, err := f.replug("a,b")
	if err == nil || !strings.Contains(err.Error(), "no such master") || !strings.Contains(err.Error(), "net2") {
		t.Fatalf("err = %v", err)
	}
	if got := f.exec.seen()[before:]; !slices.Equal(got, []string{"ADD net2 b", "DEL net2 b", "DEL net2 b"}) {
		t.Fatalf("delegate calls %v", got)
	}
	if want := []string{"eth0=cluster", "net1=ns/a"}; !slices.Equal(f.interfaces(), want) {
		t.Fatalf("record %v, want %v", f.interfaces(), want)
	}
	if f.api.status != status {
		t.Fatalf("network-status changed by a failed hot-plug: %s", f.api.status)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "state", "attachments", "c0ffee.adding")); !os.IsNotExist(err) {
		t.Fatalf("the hot-plug's mark stays: %v", err)
	}
	f.exec.fail = nil
	if out, err := f.replug("a,b"); err != nil || !slices.Equal(out.Added, []string{"net2 (ns/b)"}) {
		t.Fatalf("after the fix: %+v, %v", out, err)
	}
}

// Hot-plug refuses what the annotation may not ask of a running pod, and
// names the entry: an interface that stays, a namespace the pod may not
// use.
func TestReplugRefusesBadEntries(t *testing.T) {
	f := newFixture(t, map[string]string{netselect.NetworksAnnotation: "a"})
	if err := f.add("uid-1"); err != nil {
		t.Fatal(err)
	}
	before := len(f.exec.seen())
	for _, tc := range []struct{ networks, want string }{
		{`[{"name":"a"},{"name":"b","interface":"net1"}]`, `networks[1]: interface "net1" of ns/b is in use`},
		{"a,missing", "missing"},
	} {
		if _, err := f.replug(tc.networks); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.networks, err, tc.want)
		}
	}
	if got := f.exec.seen()[before:]; len(got) != 0 {
		t.Fatalf("refused hot-plugs ran %v", got)
	}
}

// A hot-plug whose rollback failed too (a plugin that cannot run at all)
// does not record its addition: the pod's deletion must not be blocked by
// a DEL that can never succeed. The next hot-plug attaches it again.
func TestReplugFailedRollbackDoesNotBlockTheSandbox(t *testing.T) {
	f := newFixture(t, map[string]string{netselect.NetworksAnnotation: "a"})
	if err := f.add("uid-1"); err != nil {
		t.Fatal(err)
	}
	f.exec.fail = map[string]string{"ADD net2 b": "no such plugin", "DEL net2 b": "no such plugin"}
	if _, err := f.replug("a,b"); err == nil || !strings.Contains(err.Error(), "rollback") {
		t.Fatalf("err = %v, want the failed rollback", err)
	}
	if want := []string{"eth0=cluster", "net1=ns/a"}; !slices.Equal(f.interfaces(), want) {
		t.Fatalf("record %v, want %v", f.interfaces(), want)
	}
	before := len(f.exec.seen())
	if err := f.del(); err != nil {
		t.Fatalf("the sandbox's DEL after a failed rollback: %v", err)
	}
	if got := f.exec.seen()[before:]; slices.Contains(got, "DEL net2 b") {
		t.Fatalf("the sandbox's DEL ran %v", got)
	}
}
