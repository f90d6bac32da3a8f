package controller

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/plexus-cni/plexus/internal/testbed/poll"
)

// journal records what happened, in order, across goroutines.
type journal struct {
	mu     sync.Mutex
	events []string
}

func (j *journal) add(e string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.events = append(j.events, e)
}

func (j *journal) list() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.events)
}

// leaderJob is a leader-only component that journals its start and stop.
type leaderJob struct{ j *journal }

func (leaderJob) Name() string     { return "leader-job" }
func (leaderJob) LeaderOnly() bool { return true }
func (c leaderJob) Run(ctx context.Context) error {
	c.j.add("started")
	<-ctx.Done()
	c.j.add("stopped")
	return nil
}

// fakeLeases returns a fake API server whose lease writes are journaled:
// "released" when an update clears the holder. onCreate, if set, runs when
// the lease is first created (this replica becomes leader).
func fakeLeases(j *journal, onCreate func()) *fake.Clientset {
	cs := fake.NewClientset()
	cs.PrependReactor("update", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
		l := a.(k8stesting.UpdateAction).GetObject().(*coordv1.Lease)
		if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" {
			j.add("released")
		}
		return false, nil, nil
	})
	if onCreate != nil {
		cs.PrependReactor("create", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
			onCreate()
			return false, nil, nil
		})
	}
	return cs
}

func testLease() LeaderElection {
	return LeaderElection{Namespace: "kube-system", Name: "plexus-controller", Identity: "replica-a",
		LeaseDuration: 60 * time.Second, RenewDeadline: 15 * time.Second, RetryPeriod: 50 * time.Millisecond}
}

func holder(t *testing.T, cs *fake.Clientset) string {
	t.Helper()
	l, err := cs.CoordinationV1().Leases("kube-system").Get(context.Background(), "plexus-controller", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading the lease: %v", err)
	}
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// runAsync runs Run and returns a channel that receives its error.
func runAsync(ctx context.Context, cs *fake.Clientset, j *journal) <-chan error {
	d := Deps{Client: cs, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	out := make(chan error, 1)
	go func() { out <- Run(ctx, d, testLease(), []Component{leaderJob{j}}) }()
	return out
}

func waitRun(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return 30s after its context ended")
	}
}

// TestRunStopsLeaderWorkThenReleasesTheLease: when the controller stops,
// leader-only work stops first, then the lease is released, then Run
// returns — so a successor takes over at once and never overlaps.
func TestRunStopsLeaderWorkThenReleasesTheLease(t *testing.T) {
	j := &journal{}
	cs := fakeLeases(j, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := runAsync(ctx, cs, j)
	poll.Until(t, 30*time.Second, "the leader-only component runs", poll.True(func() bool {
		return slices.Contains(j.list(), "started")
	}))
	cancel()
	waitRun(t, done)
	if got, want := j.list(), []string{"started", "stopped", "released"}; !slices.Equal(got, want) {
		t.Fatalf("events when Run returned = %v, want %v", got, want)
	}
	if h := holder(t, cs); h != "" {
		t.Fatalf("lease holder after Run returned = %q, want it released", h)
	}
}

// TestRunCancelledWhileBecomingLeader ends the controller at the moment it
// wins the lease: whatever Run started must have returned when Run does
// (it used to add to its WaitGroup from the elector's goroutine, racing
// Wait), and the lease won must be released.
func TestRunCancelledWhileBecomingLeader(t *testing.T) {
	for i := range 20 {
		j := &journal{}
		ctx, cancel := context.WithCancel(context.Background())
		cs := fakeLeases(j, cancel)
		waitRun(t, runAsync(ctx, cs, j))
		events := j.list()
		started, stopped := count(events, "started"), count(events, "stopped")
		if started != stopped || count(events, "released") != 1 {
			t.Fatalf("round %d: events when Run returned = %v, want every start stopped and the lease released once", i, events)
		}
		if h := holder(t, cs); h != "" {
			t.Fatalf("round %d: lease holder after Run returned = %q, want it released", i, h)
		}
		cancel()
	}
}

func count(events []string, e string) int {
	n := 0
	for _, x := range events {
		if x == e {
			n++
		}
	}
	return n
}
