package attach

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// fakeCNI records the operations it is asked for and fails the ones listed.
type fakeCNI struct {
	libcni.CNI // unused methods panic
	mu         sync.Mutex
	calls      []string
	fail       map[string]error // "add net2" → error
}

func (f *fakeCNI) record(op string, rt *libcni.RuntimeConf) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := op + " " + rt.IfName
	f.calls = append(f.calls, key)
	return f.fail[key]
}

func (f *fakeCNI) AddNetworkList(_ context.Context, l *libcni.NetworkConfigList, rt *libcni.RuntimeConf) (types.Result, error) {
	if err := f.record("add", rt); err != nil {
		return nil, err
	}
	return &current.Result{CNIVersion: l.CNIVersion}, nil
}

func (f *fakeCNI) DelNetworkList(_ context.Context, _ *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	return f.record("del", rt)
}

func (f *fakeCNI) CheckNetworkList(_ context.Context, _ *libcni.NetworkConfigList, rt *libcni.RuntimeConf) error {
	return f.record("check", rt)
}

// atts makes one independent (macvlan) attachment per name.
func atts(version string, names ...string) []Attachment {
	out := make([]Attachment, len(names))
	for i, n := range names {
		list, err := libcni.ConfListFromBytes([]byte(`{"cniVersion":"` + version + `","name":"` + n +
			`","plugins":[{"type":"macvlan","master":"uplink0"}]}`))
		if err != nil {
			panic(err)
		}
		out[i] = Attachment{Name: "ns/" + n, IfName: n, List: list}
	}
	return out
}

func TestAddInOrderWithoutConcurrency(t *testing.T) {
	f := &fakeCNI{}
	r := &Runner{CNI: f, Concurrency: 1}
	res, err := r.Add(context.Background(), Sandbox{ContainerID: "c"}, atts("1.0.0", "eth0", "net1", "net2"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[2] == nil {
		t.Fatalf("results = %v", res)
	}
	want := []string{"add eth0", "add net1", "add net2"}
	if !slices.Equal(f.calls, want) {
		t.Fatalf("calls = %v, want %v", f.calls, want)
	}
}

func TestAddFailureRollsBackAttemptedInReverse(t *testing.T) {
	cniErr := types.NewError(7, "bad master", "")
	f := &fakeCNI{fail: map[string]error{"add net2": cniErr}}
	r := &Runner{CNI: f, Concurrency: 1}
	_, err := r.Add(context.Background(), Sandbox{ContainerID: "c"}, atts("1.0.0", "eth0", "net1", "net2", "net3"))
	var ce *types.Error
	if !errors.As(err, &ce) || ce.Code != 7 {
		t.Fatalf("err = %v, want the delegate's CNI error", err)
	}
	var ae *Error
	if !errors.As(err, &ae) || ae.IfName != "net2" || ae.Attachment != "ns/net2" {
		t.Fatalf("err = %v, want it to name net2", err)
	}
	want := []string{"add eth0", "add net1", "add net2", "del net2", "del net1", "del eth0"}
	if !slices.Equal(f.calls, want) {
		t.Fatalf("calls = %v, want %v", f.calls, want)
	}
}

// With ClusterFirst, a failed cluster network is all there is to undo.
func TestAddClusterFirstFailureAttemptsNothingElse(t *testing.T) {
	f := &fakeCNI{fail: map[string]error{"add eth0": errors.New("boom")}}
	r := &Runner{CNI: f, Concurrency: 4, ClusterFirst: true}
	if _, err := r.Add(context.Background(), Sandbox{}, atts("1.0.0", "eth0", "net1")); err == nil {
		t.Fatal("want error")
	}
	want := []string{"add eth0", "del eth0"}
	if !slices.Equal(f.calls, want) {
		t.Fatalf("calls = %v, want %v", f.calls, want)
	}
}

func TestAddConcurrentRollbackCoversEveryAttempt(t *testing.T) {
	f := &fakeCNI{fail: map[string]error{"add net3": errors.New("boom")}}
	r := &Runner{CNI: f, Concurrency: 8}
	_, err := r.Add(context.Background(), Sandbox{}, atts("1.0.0", "eth0", "net1", "net2", "net3", "net4"))
	if err == nil {
		t.Fatal("want error")
	}
	adds, dels := map[string]bool{}, []string{}
	for _, c := range f.calls {
		if op, name, _ := strings.Cut(c, " "); op == "add" {
			adds[name] = true
		} else {
			dels = append(dels, name)
		}
	}
	// Every attachment attempted is deleted, eth0 last.
	if len(dels) != len(adds) || dels[len(dels)-1] != "eth0" {
		t.Fatalf("adds %v, dels %v", adds, dels)
	}
	for _, d := range dels {
		if !adds[d] {
			t.Fatalf("deleted %s that was never attempted", d)
		}
	}
}

func TestRollbackFailureIsReported(t *testing.T) {
	f := &fakeCNI{fail: map[string]error{"add net1": errors.New("add boom"), "del eth0": errors.New("del boom")}}
	r := &Runner{CNI: f, Concurrency: 1}
	_, err := r.Add(context.Background(), Sandbox{}, atts("1.0.0", "eth0", "net1"))
	var rb *RollbackError
	if !errors.As(err, &rb) {
		t.Fatalf("err = %v, want a RollbackError", err)
	}
}

func TestDelGoesOnPastFailuresAndReportsAll(t *testing.T) {
	f := &fakeCNI{fail: map[string]error{"del net2": errors.New("x"), "del net1": errors.New("y")}}
	r := &Runner{CNI: f}
	err := r.Del(context.Background(), Sandbox{}, atts("1.0.0", "eth0", "net1", "net2"))
	want := []string{"del net2", "del net1", "del eth0"}
	if !slices.Equal(f.calls, want) {
		t.Fatalf("calls = %v, want %v", f.calls, want)
	}
	for _, s := range []string{"delete net2 (ns/net2): x", "delete net1 (ns/net1): y"} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Fatalf("err = %v, want it to contain %q", err, s)
		}
	}
}

func TestCheckSkipsVersionsWithoutCheck(t *testing.T) {
	f := &fakeCNI{}
	r := &Runner{CNI: f}
	all := append(atts("0.3.1", "eth0"), atts("0.4.0", "net1")...)
	all = append(all, atts("1.1.0", "net2")...)
	all[2].List.DisableCheck = true
	if err := r.Check(context.Background(), Sandbox{}, all); err != nil {
		t.Fatal(err)
	}
	if want := []string{"check net1"}; !slices.Equal(f.calls, want) {
		t.Fatalf("calls = %v, want %v", f.calls, want)
	}
}
