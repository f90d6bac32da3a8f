package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	current "github.com/containernetworking/cni/pkg/types/100"
	corev1 "k8s.io/api/core/v1"

	"github.com/plexus-cni/plexus/internal/cache"
	"github.com/plexus-cni/plexus/internal/cnierr"
	"github.com/plexus-cni/plexus/internal/config"
	"github.com/plexus-cni/plexus/pkg/netselect"
)

// gatedAPI holds GetPod, when started is set, until the cluster network's
// ADD has reached the delegate and said so on started (or gives up after a
// while and fails the read).
type gatedAPI struct {
	*fakeAPI
	store *cache.Store
	// markedAtRead says whether the ADD mark was there when the pod was
	// asked for: it is written just before the cluster network starts early.
	markedAtRead bool
	started      <-chan string
	// atStart is what the delegate's ADD said on started.
	atStart string
	// onRead, when set, is called as the pod is asked for.
	onRead func()
}

func (g *gatedAPI) GetPod(ctx context.Context, ns, name string) (*corev1.Pod, error) {
	g.markedAtRead = g.store.Adding("c0ffee")
	if g.onRead != nil {
		g.onRead()
	}
	if g.started != nil {
		select {
		case g.atStart = <-g.started:
		case <-time.After(30 * time.Second):
			return nil, errors.New("the cluster network's ADD did not start while the pod was read")
		}
	}
	return g.fakeAPI.GetPod(ctx, ns, name)
}

// earlyFixture is the fixture of a plugin in process (StartClusterEarly),
// its configuration changed by edit.
func earlyFixture(t *testing.T, annotations map[string]string, edit func(conf map[string]any)) (*fixture, *gatedAPI, *skel.CmdArgs) {
	f := newFixture(t, annotations)
	f.p.StartClusterEarly = true
	g := &gatedAPI{fakeAPI: f.api, store: cache.New(filepath.Join(f.dir, "state", "attachments"))}
	f.p.NewAPI = func(*config.NetConf, string) (API, error) { return g, nil }
	args := f.args("uid-1")
	if edit != nil {
		var conf map[string]any
		if err := json.Unmarshal(args.StdinData, &conf); err != nil {
			t.Fatal(err)
		}
		edit(conf)
		args.StdinData, _ = json.Marshal(conf)
	}
	return f, g, args
}

func addWith(f *fixture, args *skel.CmdArgs) (*current.Result, error) {
	r, err := f.p.load(args)
	if err != nil {
		return nil, err
	}
	res, err := f.p.add(context.Background(), r)
	if err != nil {
		return nil, err
	}
	return current.NewResultFromResult(res)
}

// recordCheckingExec checks, when the cluster network's ADD reaches the
// delegate, that the record naming it and the ADD mark are on disk: a
// runner killed from then on leaves what DEL needs.
type recordCheckingExec struct {
	*fakeExec
	store *cache.Store
	found chan string
}

func (e *recordCheckingExec) ExecPlugin(ctx context.Context, path string, stdin []byte, environ []string) ([]byte, error) {
	if slices.Contains(environ, "CNI_COMMAND=ADD") && slices.Contains(environ, "CNI_IFNAME=eth0") {
		rec, err := e.store.Load("c0ffee")
		switch {
		case err != nil || rec == nil || len(rec.Attachments) == 0:
			e.found <- "no record"
		case !e.store.Adding("c0ffee"):
			e.found <- "no ADD mark"
		default:
			e.found <- rec.Attachments[0].IfName
		}
	}
	return e.fakeExec.ExecPlugin(ctx, path, stdin, environ)
}

// In process, the cluster network (a file) attaches while the pod is read:
// the pod's read waits for its ADD to reach the delegate. The record and
// the ADD mark are written before it starts, the results keep their order
// and the whole ADD is what it was.
func TestEarlyClusterNetworkAttachesWhileThePodIsRead(t *testing.T) {
	f, g, args := earlyFixture(t, map[string]string{netselect.NetworksAnnotation: "a"}, nil)
	rc := &recordCheckingExec{fakeExec: f.exec, store: cache.New(filepath.Join(f.dir, "state", "attachments")), found: make(chan string, 4)}
	f.p.Exec = rc
	g.started = rc.found
	res, err := addWith(f, args)
	if err != nil {
		t.Fatal(err)
	}
	if got := g.atStart; got != "eth0" {
		t.Errorf("when the cluster network's ADD started: %s, want a record of eth0 and the ADD mark", got)
	}
	if !g.markedAtRead {
		t.Error("the pod was read before the cluster network started")
	}
	if want := []string{"ADD eth0 cluster", "ADD net1 a"}; !slices.Equal(f.exec.seen(), want) {
		t.Fatalf("delegate calls = %v, want %v", f.exec.seen(), want)
	}
	if len(res.Interfaces) != 1 || res.Interfaces[0].Name != "eth0" {
		t.Errorf("result %+v, want the cluster network's", res.Interfaces)
	}
	var st []map[string]any
	if err := json.Unmarshal([]byte(f.api.status), &st); err != nil || len(st) != 2 || st[0]["name"] != "cluster" || st[1]["interface"] != "net1" {
		t.Fatalf("network-status = %s (%v)", f.api.status, err)
	}
	rec, err := cache.New(filepath.Join(f.dir, "state", "attachments")).Load("c0ffee")
	if err != nil || rec == nil || len(rec.Attachments) != 2 {
		t.Fatalf("record %+v (%v), want both attachments", rec, err)
	}
	if rc.store.Adding("c0ffee") {
		t.Error("the ADD mark outlived the ADD")
	}
}

// An ADD that fails once the cluster network has started early undoes it
// and leaves nothing: no record, no mark, the error it would have had.
func TestEarlyClusterNetworkIsUndoneWhenTheADDFails(t *testing.T) {
	for _, tc := range []struct {
		name, uid string
		ann       map[string]string
		edit      func(f *fixture)
		fail      map[string]string
		code      uint     // 0: the delegate's
		want      []string // delegate calls
		errHas    string
	}{
		{name: "sandbox of an earlier pod", uid: "uid-of-an-earlier-pod", code: cnierr.UnknownContainer,
			want: []string{"ADD eth0 cluster", "DEL eth0 cluster"}, errHas: "uid-of-an-earlier-pod"},
		{name: "network that does not exist", uid: "uid-1", ann: map[string]string{netselect.NetworksAnnotation: "a,absent"},
			code: cnierr.NetworkNotFound, want: []string{"ADD eth0 cluster", "DEL eth0 cluster"}, errHas: "absent"},
		{name: "pod that does not exist", uid: "uid-1", edit: func(f *fixture) { f.api.pod.Name = "other" },
			code: cnierr.TryAgainLater, want: []string{"ADD eth0 cluster", "DEL eth0 cluster"}, errHas: "pod"},
		{name: "cluster network fails", uid: "uid-1", ann: map[string]string{netselect.NetworksAnnotation: "a"},
			fail: map[string]string{"ADD eth0 cluster": "bridge failed"},
			want: []string{"ADD eth0 cluster", "DEL eth0 cluster"}, errHas: "bridge failed"},
		{name: "secondary network fails", uid: "uid-1", ann: map[string]string{netselect.NetworksAnnotation: "a"},
			fail: map[string]string{"ADD net1 a": "no such master"},
			want: []string{"ADD eth0 cluster", "ADD net1 a", "DEL net1 a", "DEL eth0 cluster"}, errHas: "no such master"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, _, args := earlyFixture(t, tc.ann, nil)
			f.exec.fail = tc.fail
			if tc.edit != nil {
				tc.edit(f)
			}
			args.Args = strings.Replace(args.Args, "K8S_POD_UID=uid-1", "K8S_POD_UID="+tc.uid, 1)
			_, err := addWith(f, args)
			if err == nil || !strings.Contains(err.Error(), tc.errHas) || (tc.code != 0 && cnierr.Code(err) != tc.code) {
				t.Fatalf("err = %v (code %d), want code %d naming %q", err, cnierr.Code(err), tc.code, tc.errHas)
			}
			if got := f.exec.seen(); !slices.Equal(got, tc.want) {
				t.Errorf("delegate calls = %v, want %v", got, tc.want)
			}
			leftovers(t, f)
		})
	}
}

// leftovers fails the test if an ADD left its record or mark behind.
func leftovers(t *testing.T, f *fixture) {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Join(f.dir, "state", "attachments"))
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".lock") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

// A pod whose default-network annotation replaces the cluster network: the
// one started early is undone before the replacement attaches as eth0.
func TestEarlyClusterNetworkReplacedByThePodsDefaultNetwork(t *testing.T) {
	f, _, args := earlyFixture(t, map[string]string{netselect.DefaultNetworkAnnotation: "ns/a"}, nil)
	if _, err := addWith(f, args); err != nil {
		t.Fatal(err)
	}
	if want := []string{"ADD eth0 cluster", "DEL eth0 cluster", "ADD eth0 a"}; !slices.Equal(f.exec.seen(), want) {
		t.Fatalf("delegate calls = %v, want %v", f.exec.seen(), want)
	}
	rec, err := cache.New(filepath.Join(f.dir, "state", "attachments")).Load("c0ffee")
	if err != nil || rec == nil || len(rec.Attachments) != 1 || rec.Attachments[0].StatusName != "ns/a" {
		t.Fatalf("record %+v (%v), want ns/a alone", rec, err)
	}
}

// Nothing attaches before the pod is read when the cluster network could
// depend on it, is of a type plexus does not know, or clusterNetworkFirst
// asks for Multus's order, nor in plexusd (StartClusterEarly off), whose
// pod reads come from its cache.
func TestClusterNetworkWaitsForThePodWhenItMust(t *testing.T) {
	for _, tc := range []struct {
		name  string
		early bool
		edit  func(conf map[string]any)
	}{
		{name: "clusterNetworkFirst", early: true, edit: func(c map[string]any) { c["clusterNetworkFirst"] = true }},
		{name: "a cluster network named, which a NAD may be", early: true, edit: func(c map[string]any) { c["clusterNetwork"] = "cluster" }},
		{name: "plexusd"},
		{name: "a cluster network of a type plexus does not know", early: true, edit: func(c map[string]any) {
			c["clusterNetwork"] = ""
			c["delegates"] = []any{map[string]any{"cniVersion": "1.0.0", "name": "cluster", "type": "flannel"}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, g, args := earlyFixture(t, map[string]string{netselect.NetworksAnnotation: "a"}, tc.edit)
			f.p.StartClusterEarly = tc.early
			var conf map[string]any
			_ = json.Unmarshal(args.StdinData, &conf)
			conf["confDir"] = f.dir
			args.StdinData, _ = json.Marshal(conf)
			if _, err := addWith(f, args); err != nil {
				t.Fatal(err)
			}
			if g.markedAtRead {
				t.Error("the cluster network started before the pod was read")
			}
			if want := []string{"ADD eth0 cluster", "ADD net1 a"}; !slices.Equal(f.exec.seen(), want) {
				t.Errorf("delegate calls = %v, want %v", f.exec.seen(), want)
			}
		})
	}
}

// A pod that asks for no other network: the record written before the
// cluster network started is already the whole one and is not written
// again.
func TestEarlyClusterNetworkAloneWritesTheRecordOnce(t *testing.T) {
	f, g, args := earlyFixture(t, nil, nil)
	var atRead uint64
	g.onRead = func() { atRead = inode(t, f.recordPath()) }
	if _, err := addWith(f, args); err != nil {
		t.Fatal(err)
	}
	rec, err := cache.New(filepath.Join(f.dir, "state", "attachments")).Load("c0ffee")
	if err != nil || rec == nil || len(rec.Attachments) != 1 || rec.Attachments[0].IfName != "eth0" {
		t.Fatalf("record %+v (%v), want the cluster network alone", rec, err)
	}
	if atRead == 0 || inode(t, f.recordPath()) != atRead {
		t.Error("the record was written again after the pod was read")
	}
	if err := f.del(); err != nil || !slices.Equal(f.exec.seen(), []string{"ADD eth0 cluster", "DEL eth0 cluster"}) {
		t.Fatalf("DEL: %v, delegate calls %v", err, f.exec.seen())
	}
}

func inode(t *testing.T, path string) uint64 {
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}
