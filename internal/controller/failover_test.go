package controller_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-cni/plexus/internal/controller"
	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/internal/testbed/poll"
)

// leaseDuration is far longer than the test's waits: the successor can only
// take over in time if the first replica released the lease.
const leaseDuration = 60 * time.Second

// replicas tracks which replica's leader-only work runs, and whether two
// ever ran at once.
type replicas struct {
	mu      sync.Mutex
	running map[string]bool
	overlap string
}

func (r *replicas) set(id string, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.running[id] = on
	if on && len(r.running) > 1 {
		for other, o := range r.running {
			if o && other != id {
				r.overlap = fmt.Sprintf("%s started while %s was running", id, other)
			}
		}
	}
}

func (r *replicas) runs(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running[id]
}

// reconciler stands in for the leader-only components.
type reconciler struct {
	id string
	r  *replicas
}

func (reconciler) Name() string     { return "reconciler" }
func (reconciler) LeaderOnly() bool { return true }
func (c reconciler) Run(ctx context.Context) error {
	c.r.set(c.id, true)
	<-ctx.Done()
	c.r.set(c.id, false)
	return nil
}

// start runs one controller replica as the binary does (controller.Run with
// the lease flags' values). stop ends it and returns Run's error once Run
// has returned (bounded).
func start(t *testing.T, env *testbed.Env, ns, id string, r *replicas) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	d := controller.Deps{Config: env.RESTConfig, Client: env.Client, Dynamic: env.Dynamic,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	le := controller.LeaderElection{Namespace: ns, Name: "plexus-controller", Identity: id,
		LeaseDuration: leaseDuration, RenewDeadline: 20 * time.Second, RetryPeriod: 100 * time.Millisecond}
	done := make(chan error, 1)
	go func() { done <- controller.Run(ctx, d, le, []controller.Component{reconciler{id, r}}) }()
	stop = sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			return fmt.Errorf("%s: Run did not return 30s after it was stopped", id)
		}
	})
	t.Cleanup(func() { _ = stop() })
	return stop
}

func holder(t *testing.T, env *testbed.Env, ns string) string {
	t.Helper()
	l, err := env.Client.CoordinationV1().Leases(ns).Get(t.Context(), "plexus-controller", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading lease %s/plexus-controller: %v", ns, err)
	}
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// TestFailoverAfterStop stops the leading replica and expects the other to
// take over long before the 60s lease could expire: the first replica must
// have stopped its leader-only work and released the lease before its Run
// returned.
func TestFailoverAfterStop(t *testing.T) {
	env := testbed.Require(t)
	ns := env.Namespace(t, "leader")
	r := &replicas{running: map[string]bool{}}

	stopA := start(t, env, ns, "replica-a", r)
	poll.Until(t, 30*time.Second, "replica-a leads", func() (bool, string) {
		return r.runs("replica-a"), ""
	})
	start(t, env, ns, "replica-b", r)
	if h := holder(t, env, ns); h != "replica-a" {
		t.Fatalf("lease holder = %q while replica-a leads", h)
	}

	if err := stopA(); err != nil {
		t.Fatalf("replica-a: %v", err)
	}
	if r.runs("replica-a") {
		t.Fatal("replica-a's leader-only work still runs after its Run returned")
	}
	if h := holder(t, env, ns); h == "replica-a" {
		t.Fatal("replica-a's Run returned without releasing the lease")
	}
	// Bounded well below the lease duration: only a released lease passes.
	poll.Until(t, leaseDuration/3, "replica-b takes over the lease", func() (bool, string) {
		h := holder(t, env, ns)
		return h == "replica-b" && r.runs("replica-b"), "holder " + h
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.overlap != "" {
		t.Fatalf("leader-only work overlapped: %s", r.overlap)
	}
}
