package attach

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// gatedCNI blocks every ADD until the test opens the gate of its interface,
// and records "start X" and "finish X" events.
type gatedCNI struct {
	libcni.CNI // unused methods panic
	mu         sync.Mutex
	events     []string
	gates      map[string]chan struct{}
}

func newGated(atts []Attachment) *gatedCNI {
	g := &gatedCNI{gates: map[string]chan struct{}{}}
	for _, a := range atts {
		g.gates[a.IfName] = make(chan struct{})
	}
	return g
}

func (g *gatedCNI) event(e string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.events = append(g.events, e)
}

func (g *gatedCNI) AddNetworkList(_ context.Context, l *libcni.NetworkConfigList, rt *libcni.RuntimeConf) (types.Result, error) {
	g.event("start " + rt.IfName)
	<-g.gates[rt.IfName]
	g.event("finish " + rt.IfName)
	return &current.Result{CNIVersion: l.CNIVersion}, nil
}

// release lets the ADD of ifName finish (again: no-op).
func (g *gatedCNI) release(ifName string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.gates[ifName]:
	default:
		close(g.gates[ifName])
	}
}

// releaseAll lets every ADD finish, so that a failed test leaves no
// goroutine blocked.
func (g *gatedCNI) releaseAll() {
	for name := range g.gates {
		g.release(name)
	}
}

// running lists, sorted, the interfaces whose ADD started and has not
// finished.
func (g *gatedCNI) running() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, e := range g.events {
		op, name, _ := strings.Cut(e, " ")
		if op == "start" {
			out = append(out, name)
		} else {
			out = slices.DeleteFunc(out, func(n string) bool { return n == name })
		}
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// bondPod is eth0, two SR-IOV VFs, a bond over them, then two macvlans.
func bondPod(t *testing.T) []Attachment {
	return []Attachment{
		att(t, "eth0", cluster), att(t, "net1", sriov), att(t, "net2", sriov),
		att(t, "net3", bondLinks), att(t, "net4", macvlan), att(t, "net5", macvlan),
	}
}

// synctest.Wait returns once every goroutine of the runner is blocked (on a
// gate, on its stage's WaitGroup or on a slot), so what runs after each
// release is exactly what the runner lets run: no sleeps, no timing.
func TestAddDependentStartsAfterItsPredecessorsFinished(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		all := bondPod(t)
		g := newGated(all)
		t.Cleanup(g.releaseAll)
		r := &Runner{CNI: g, Concurrency: 4, ClusterFirst: true}
		var (
			res []types.Result
			err error
		)
		done := make(chan struct{})
		go func() {
			defer close(done)
			res, err = r.Add(context.Background(), Sandbox{ContainerID: "c"}, all)
		}()
		steps := []struct{ release, running string }{
			{"", "eth0"},
			{"eth0", "net1 net2"}, // the VFs overlap
			{"net1", "net2"},      // the bond waits for both VFs
			{"net2", "net3"},      // and runs alone
			{"net3", "net4 net5"}, // what follows it overlaps again
			{"net5", "net4"},
			{"net4", ""},
		}
		for _, s := range steps {
			if s.release != "" {
				g.release(s.release)
			}
			synctest.Wait()
			if got := g.running(); got != s.running {
				t.Fatalf("after %s finished, running = %q, want %q (events %v)", s.release, got, s.running, g.events)
			}
		}
		<-done
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != len(all) || slices.Contains(res, nil) {
			t.Fatalf("results = %v, want one per attachment in order", res)
		}
	})
}

// With attachConcurrency 1 the VFs and the macvlans keep the order too.
func TestAddConcurrencyOneKeepsEveryAttachmentAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		all := bondPod(t)
		g := newGated(all)
		t.Cleanup(g.releaseAll)
		r := &Runner{CNI: g, Concurrency: 1}
		done := make(chan error, 1)
		go func() {
			_, err := r.Add(context.Background(), Sandbox{}, all)
			done <- err
		}()
		for _, a := range all {
			synctest.Wait()
			if got := g.running(); got != a.IfName {
				t.Fatalf("running = %q, want %q alone", got, a.IfName)
			}
			g.release(a.IfName)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// splitCalls returns the attachments added (as a set) and deleted (in order).
func splitCalls(calls []string) (map[string]bool, []string) {
	adds, dels := map[string]bool{}, []string{}
	for _, c := range calls {
		if op, name, _ := strings.Cut(c, " "); op == "add" {
			adds[name] = true
		} else {
			dels = append(dels, name)
		}
	}
	return adds, dels
}

func TestAddFailureStopsLaterStages(t *testing.T) {
	tests := []struct {
		fail string
		adds string // attachments attempted, sorted
		dels string // rollback, in order
	}{
		{"net2", "eth0 net1 net2", "net2 net1 eth0"},
		{"net3", "eth0 net1 net2 net3", "net3 net2 net1 eth0"},
	}
	for _, tc := range tests {
		t.Run(tc.fail, func(t *testing.T) {
			cniErr := types.NewError(7, "no such link", "")
			f := &fakeCNI{fail: map[string]error{"add " + tc.fail: cniErr}}
			r := &Runner{CNI: f, Concurrency: 4}
			_, err := r.Add(context.Background(), Sandbox{}, bondPod(t))
			var ae *Error
			if !errors.As(err, &ae) || ae.IfName != tc.fail || !errors.Is(err, cniErr) {
				t.Fatalf("err = %v, want the delegate error of %s", err, tc.fail)
			}
			adds, dels := splitCalls(f.calls)
			if got := strings.Join(slices.Sorted(maps.Keys(adds)), " "); got != tc.adds {
				t.Errorf("attempted %q, want %q", got, tc.adds)
			}
			if got := strings.Join(dels, " "); got != tc.dels {
				t.Errorf("rolled back %q, want %q", got, tc.dels)
			}
		})
	}
}

func TestSchedule(t *testing.T) {
	const flannel = `{"type":"flannel","delegate":{"isDefaultGateway":true}}`
	tests := []struct {
		name         string
		atts         []Attachment
		clusterFirst bool
		want         string
	}{
		{"independent cluster network overlaps", []Attachment{att(t, "eth0", cluster), att(t, "net1", macvlan), att(t, "net2", macvlan)}, false, "0 1 2"},
		{"clusterNetworkFirst", []Attachment{att(t, "eth0", cluster), att(t, "net1", macvlan), att(t, "net2", macvlan)}, true, "0 | 1 2"},
		{"a cluster network of unknown type stays alone", []Attachment{att(t, "eth0", flannel), att(t, "net1", macvlan), att(t, "net2", macvlan)}, false, "0 | 1 2"},
		{"a secondary naming eth0 waits for it", []Attachment{att(t, "eth0", cluster), att(t, "net1", `{"type":"tuning","sysctl":{"net.ipv4.conf.eth0.rp_filter":"0"}}`), att(t, "net2", macvlan)}, false, "0 | 1 | 2"},
		{"the cluster network alone", []Attachment{att(t, "eth0", cluster)}, false, "0"},
		{"nothing", nil, false, ""},
	}
	for _, tc := range tests {
		if got := renderStages(schedule(tc.atts, tc.clusterFirst)); got != tc.want {
			t.Errorf("%s: schedule = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// The cluster network attaches at the same time as the independent
// secondary networks; the results keep the attachments' order, and a
// failure of either side rolls back both.
func TestAddOverlapsTheClusterNetwork(t *testing.T) {
	pod := func(t *testing.T) []Attachment {
		return []Attachment{att(t, "eth0", cluster), att(t, "net1", macvlan), att(t, "net2", macvlan)}
	}
	t.Run("together, results in order", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			all := pod(t)
			g := newGated(all)
			t.Cleanup(g.releaseAll)
			r := &Runner{CNI: g, Concurrency: 4}
			var res []types.Result
			var err error
			done := make(chan struct{})
			go func() {
				defer close(done)
				res, err = r.Add(context.Background(), Sandbox{}, all)
			}()
			synctest.Wait()
			if got := g.running(); got != "eth0 net1 net2" {
				t.Fatalf("running = %q, want the cluster network with both secondaries", got)
			}
			for _, n := range []string{"net2", "net1", "eth0"} { // finishing in reverse
				g.release(n)
			}
			<-done
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range res {
				if r == nil || r.(*current.Result).CNIVersion != "1.0.0" {
					t.Fatalf("results[%d] = %v", i, r)
				}
			}
		})
	})
	for _, fail := range []string{"eth0", "net1"} {
		t.Run(fail+" fails", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cniErr := types.NewError(11, "try again", "")
				f := &fakeCNI{fail: map[string]error{"add " + fail: cniErr}}
				// Every ADD waits for the other two to start (a runner that
				// did not overlap them would deadlock the bubble), so the
				// failure meets all three under way.
				b := &barrierCNI{fakeCNI: f}
				b.started.Add(3)
				_, err := (&Runner{CNI: b, Concurrency: 4}).Add(context.Background(), Sandbox{}, pod(t))
				var ae *Error
				if !errors.As(err, &ae) || ae.IfName != fail || !errors.Is(err, cniErr) {
					t.Fatalf("err = %v, want the delegate error of %s", err, fail)
				}
				adds, dels := splitCalls(f.calls)
				if len(adds) != 3 || strings.Join(dels, " ") != "net2 net1 eth0" {
					t.Errorf("added %v, rolled back %v; want all three added and deleted in reverse", adds, dels)
				}
			})
		})
	}
}

// barrierCNI holds each ADD until started has counted every ADD.
type barrierCNI struct {
	*fakeCNI
	started sync.WaitGroup
}

func (b *barrierCNI) AddNetworkList(ctx context.Context, l *libcni.NetworkConfigList, rt *libcni.RuntimeConf) (types.Result, error) {
	b.started.Done()
	b.started.Wait()
	return b.fakeCNI.AddNetworkList(ctx, l, rt)
}

// Observe hears of every attachment's ADD, failed ones included.
func TestAddObserves(t *testing.T) {
	f := &fakeCNI{fail: map[string]error{"add net2": types.NewError(7, "bad", "")}}
	var mu sync.Mutex
	seen := map[string]bool{}
	r := &Runner{CNI: f, Concurrency: 4, Observe: func(a *Attachment, _ time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		seen[a.IfName] = err != nil
	}}
	r.Add(context.Background(), Sandbox{}, []Attachment{att(t, "eth0", cluster), att(t, "net1", macvlan), att(t, "net2", macvlan)})
	if len(seen) != 3 || seen["eth0"] || seen["net1"] || !seen["net2"] {
		t.Errorf("observed %v, want eth0 and net1 ok, net2 failed", seen)
	}
}

// A cluster network started early (Start) takes its place in the first
// stage: the secondaries that may overlap it start while it still runs,
// one that may not (or ClusterFirst) waits for it to finish; it is never
// run twice, and Abandon deletes it.
func TestAddStartedTakesTheClusterNetworksPlace(t *testing.T) {
	const flannel = `{"type":"flannel"}`
	for _, tc := range []struct {
		name         string
		cluster      string
		clusterFirst bool
		running      string // once the plan's attachments are handed over
	}{
		{"independent", cluster, false, "eth0 net1 net2"},
		{"clusterNetworkFirst", cluster, true, "eth0"},
		{"a type plexus does not know", flannel, false, "eth0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				all := []Attachment{att(t, "eth0", tc.cluster), att(t, "net1", macvlan), att(t, "net2", macvlan)}
				g := newGated(all)
				t.Cleanup(g.releaseAll)
				r := &Runner{CNI: g, Concurrency: 4, ClusterFirst: tc.clusterFirst}
				first := r.Start(context.Background(), Sandbox{}, all[0])
				synctest.Wait()
				if got := g.running(); got != "eth0" {
					t.Fatalf("after Start, running = %q, want eth0", got)
				}
				if !first.Is(&all[0]) || first.Is(&all[1]) {
					t.Fatal("Is does not tell the cluster network from a secondary")
				}
				var res []types.Result
				var err error
				done := make(chan struct{})
				go func() {
					defer close(done)
					res, err = r.AddStarted(context.Background(), Sandbox{}, all, first)
				}()
				synctest.Wait()
				if got := g.running(); got != tc.running {
					t.Fatalf("running = %q, want %q", got, tc.running)
				}
				g.releaseAll()
				<-done
				if err != nil || len(res) != 3 || slices.Contains(res, nil) {
					t.Fatalf("results %v, %v; want three in order", res, err)
				}
				if n := strings.Count(strings.Join(g.events, ","), "start eth0"); n != 1 {
					t.Errorf("the cluster network's ADD ran %d times", n)
				}
			})
		})
	}
	t.Run("abandoned", func(t *testing.T) {
		f := &fakeCNI{}
		r := &Runner{CNI: f}
		first := r.Start(context.Background(), Sandbox{}, att(t, "eth0", cluster))
		cause := errors.New("pod not found")
		if err := r.Abandon(context.Background(), Sandbox{}, first, cause); err != cause {
			t.Fatalf("Abandon = %v, want the cause", err)
		}
		if got := strings.Join(f.calls, ","); got != "add eth0,del eth0" {
			t.Errorf("calls %q, want the ADD then its DEL", got)
		}
	})
}
