package server

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/internal/cnierr"
	"github.com/plexus-cni/plexus/internal/daemon/wire"
)

// blocking holds every request until release is closed.
type blocking struct {
	started chan string
	release chan struct{}
}

func (b *blocking) Do(ctx context.Context, command string, a *skel.CmdArgs) (types.Result, string, error) {
	b.started <- a.ContainerID
	<-b.release
	return nil, "", nil
}

type recorder struct {
	mu       sync.Mutex
	codes    []uint
	networks [][]string
}

func (r *recorder) Observe(_ string, n []string, _ time.Duration, code uint) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.codes = append(r.codes, code)
	r.networks = append(r.networks, n)
}
func (r *recorder) InFlight(float64) {}
func (r *recorder) Queued(float64)   {}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// With every slot busy and the queue full, a request is refused at once
// with code 11; queued requests run when slots free up.
func TestBoundedConcurrencyAndQueue(t *testing.T) {
	b := &blocking{started: make(chan string, 10), release: make(chan struct{})}
	rec := &recorder{}
	s := New(b, Options{Concurrency: 2, QueueLength: 1, Recorder: rec})
	results := make(chan *wire.Response, 3)
	for _, id := range []string{"a", "b", "c"} {
		go func() { results <- s.admitAndRun(context.Background(), &wire.Request{Command: "ADD", ContainerID: id}) }()
	}
	<-b.started
	<-b.started
	waitUntil(t, "one request waits", func() bool {
		s.admit.mu.Lock()
		defer s.admit.mu.Unlock()
		return s.admit.waiting == 1
	})
	refused := s.admitAndRun(context.Background(), &wire.Request{Command: "ADD", ContainerID: "d"})
	if refused.Error == nil || refused.Error.Code != cnierr.TryAgainLater {
		t.Fatalf("request beyond the queue: %+v, want code 11", refused)
	}
	select {
	case id := <-b.started:
		t.Fatalf("request %s ran beyond the concurrency bound", id)
	default:
	}
	close(b.release)
	for range 3 {
		if r := <-results; r.Error != nil {
			t.Errorf("admitted request failed: %+v", r.Error)
		}
	}
}

// A waiting request whose shim went away gives its place up.
func TestQueuedRequestCancelled(t *testing.T) {
	b := &blocking{started: make(chan string, 1), release: make(chan struct{})}
	defer close(b.release)
	s := New(b, Options{Concurrency: 1, QueueLength: 1})
	go s.admitAndRun(context.Background(), &wire.Request{Command: "ADD", ContainerID: "a"})
	<-b.started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := s.admitAndRun(ctx, &wire.Request{Command: "ADD", ContainerID: "b"})
	if r.Error == nil || r.Error.Code != cnierr.TryAgainLater {
		t.Fatalf("cancelled waiting request: %+v", r)
	}
}

type failing struct{ err error }

func (f failing) Do(context.Context, string, *skel.CmdArgs) (types.Result, string, error) {
	return nil, "", f.err
}

func TestErrorsKeepCodeAndAreCounted(t *testing.T) {
	rec := &recorder{}
	s := New(failing{cnierr.Wrap(cnierr.TryAgainLater, errors.New("get pod default/p: timeout"))}, Options{
		Concurrency: 1, Recorder: rec,
		Networks: func(*wire.Request) []string { return []string{"default/macvlan"} },
	})
	r := s.admitAndRun(context.Background(), &wire.Request{Command: "DEL", ContainerID: "a"})
	if r.Error == nil || r.Error.Code != 11 || r.Error.Msg != "get pod default/p: timeout" {
		t.Fatalf("response %+v", r)
	}
	if len(rec.codes) != 1 || rec.codes[0] != 11 || len(rec.networks[0]) != 1 || rec.networks[0][0] != "default/macvlan" {
		t.Errorf("recorded codes %v networks %v", rec.codes, rec.networks)
	}
}
