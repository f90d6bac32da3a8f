package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/internal/cnierr"
	"github.com/plexus-cni/plexus/internal/daemon/wire"
	"github.com/plexus-cni/plexus/internal/testbed/poll"
)

// blocking holds every request until release is closed.
type blocking struct {
	started chan string
	release chan struct{}
}

func (b *blocking) Do(_ context.Context, req Request) (types.Result, string, error) {
	b.started <- req.Args.ContainerID
	<-b.release
	return nil, "", nil
}

type recorder struct {
	mu       sync.Mutex
	codes    []uint
	networks [][]string
	admitted []string
}

func (r *recorder) Observe(_ string, n []string, _ time.Duration, code uint) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.codes = append(r.codes, code)
	r.networks = append(r.networks, n)
}
func (r *recorder) InFlight(float64) {}
func (r *recorder) Queued(float64)   {}
func (r *recorder) Admitted(command string, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.admitted = append(r.admitted, command)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 10*time.Second, what, poll.True(cond))
}

// With every slot busy and the queue full, a request is refused at once
// with code 11; queued requests run when slots free up.
func TestBoundedConcurrencyAndQueue(t *testing.T) {
	b := &blocking{started: make(chan string, 10), release: make(chan struct{})}
	rec := &recorder{}
	s := New(b, Options{Concurrency: 2, QueueLength: 1, Recorder: rec})
	results := make(chan *wire.Response, 3)
	for _, id := range []string{"a", "b", "c"} {
		go func() {
			results <- s.admitAndRun(context.Background(), s.cni, &wire.Request{Command: "ADD", ContainerID: id})
		}()
	}
	<-b.started
	<-b.started
	waitUntil(t, "one request waits", func() bool {
		s.cni.admit.mu.Lock()
		defer s.cni.admit.mu.Unlock()
		return s.cni.admit.waiting == 1
	})
	refused := s.admitAndRun(context.Background(), s.cni, &wire.Request{Command: "ADD", ContainerID: "d"})
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
	// Each admitted request reported its wait once; the refused one did not.
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if !slices.Equal(rec.admitted, []string{"ADD", "ADD", "ADD"}) {
		t.Errorf("admissions reported: %v, want three ADDs", rec.admitted)
	}
}

// A waiting request whose shim went away gives its place up.
func TestQueuedRequestCancelled(t *testing.T) {
	b := &blocking{started: make(chan string, 1), release: make(chan struct{})}
	defer close(b.release)
	s := New(b, Options{Concurrency: 1, QueueLength: 1})
	go s.admitAndRun(context.Background(), s.cni, &wire.Request{Command: "ADD", ContainerID: "a"})
	<-b.started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := s.admitAndRun(ctx, s.cni, &wire.Request{Command: "ADD", ContainerID: "b"})
	if r.Error == nil || r.Error.Code != cnierr.TryAgainLater {
		t.Fatalf("cancelled waiting request: %+v", r)
	}
}

type failing struct{ err error }

func (f failing) Do(context.Context, Request) (types.Result, string, error) {
	return nil, "", f.err
}

func TestErrorsKeepCodeAndAreCounted(t *testing.T) {
	rec := &recorder{}
	s := New(failing{cnierr.Wrap(cnierr.TryAgainLater, errors.New("get pod default/p: timeout"))}, Options{
		Concurrency: 1, Recorder: rec,
		Networks: func(*wire.Request) []string { return []string{"default/macvlan"} },
	})
	r := s.admitAndRun(context.Background(), s.cni, &wire.Request{Command: "DEL", ContainerID: "a"})
	if r.Error == nil || r.Error.Code != 11 || r.Error.Msg != "get pod default/p: timeout" {
		t.Fatalf("response %+v", r)
	}
	if len(rec.codes) != 1 || rec.codes[0] != 11 || len(rec.networks[0]) != 1 || rec.networks[0][0] != "default/macvlan" {
		t.Errorf("recorded codes %v networks %v", rec.codes, rec.networks)
	}
}

// post sends req to path on the socket and decodes the answer.
func post(t *testing.T, socket, path string, req *wire.Request) *wire.Response {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}}}
	body, _ := json.Marshal(req)
	hresp, err := client.Post("http://plexusd"+path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Errorf("POST %s: %v", path, err)
		return &wire.Response{}
	}
	defer hresp.Body.Close()
	resp := &wire.Response{}
	if err := json.NewDecoder(hresp.Body).Decode(resp); err != nil {
		t.Errorf("POST %s: %v", path, err)
	}
	return resp
}

// addWithIPAM is a CNI handler whose ADD, like a delegate, makes an IPAM
// request to the same daemon and waits for it.
type addWithIPAM struct {
	t      *testing.T
	socket string
}

func (a *addWithIPAM) Do(_ context.Context, req Request) (types.Result, string, error) {
	resp := post(a.t, a.socket, wire.IPAMPath, &wire.Request{Command: "ADD", ContainerID: req.Args.ContainerID,
		Env: map[string]string{"NODE_NAME": "n1"}, Config: []byte(`{"cniVersion":"1.0.0","name":"n","ipam":{"type":"plexus-ipam"}}`)})
	if resp.Error != nil {
		return nil, "", resp.Error
	}
	return nil, "", nil
}

type ipamEcho struct{ env chan map[string]string }

func (e ipamEcho) Do(_ context.Context, req Request) (types.Result, string, error) {
	e.env <- req.Env
	return nil, "", nil
}

// IPAM requests have their own slots: with the only CNI slot held by an
// ADD waiting for its IPAM, the IPAM request is still served (a shared
// slot would deadlock), and it is measured by its own recorder.
func TestIPAMDoesNotTakeCNISlots(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "plexusd.sock")
	l, err := Listen(socket)
	if err != nil {
		t.Fatal(err)
	}
	cniRec, ipamRec := &recorder{}, &recorder{}
	echo := ipamEcho{env: make(chan map[string]string, 1)}
	s := New(&addWithIPAM{t: t, socket: socket}, Options{Concurrency: 1, Recorder: cniRec,
		IPAM: &Endpoint{Handler: echo, Concurrency: 1, Recorder: ipamRec}})
	go func() { _ = s.Serve(l) }()
	defer s.Shutdown(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan *wire.Response, 1)
	go func() { done <- s.admitAndRun(ctx, s.cni, &wire.Request{Command: "ADD", ContainerID: "a"}) }()
	select {
	case r := <-done:
		if r.Error != nil {
			t.Fatalf("ADD: %+v", r.Error)
		}
	case <-ctx.Done():
		t.Fatal("the ADD waiting for its IPAM request never finished: IPAM waited for a CNI slot")
	}
	if env := <-echo.env; env["NODE_NAME"] != "n1" {
		t.Errorf("IPAM handler saw env %v", env)
	}
	if len(cniRec.codes) != 1 || len(ipamRec.codes) != 1 {
		t.Errorf("recorded %d CNI and %d IPAM requests, want 1 each", len(cniRec.codes), len(ipamRec.codes))
	}
}

// untilCancelled runs until its context ends and reports why, as a
// handler whose store call hangs does.
type untilCancelled struct {
	started chan struct{}
	cause   chan error
}

func (u untilCancelled) Do(ctx context.Context, _ Request) (types.Result, string, error) {
	u.started <- struct{}{}
	<-ctx.Done()
	u.cause <- context.Cause(ctx)
	return nil, "", cnierr.Wrap(cnierr.TryAgainLater, context.Cause(ctx))
}

// A request still running when Shutdown's wait is over is cancelled: its
// handler's context ends, its answer (code 11) still reaches the caller,
// and Shutdown returns once it has gone out.
func TestShutdownCancelsRequestsStillRunning(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "plexusd.sock")
	l, err := Listen(socket)
	if err != nil {
		t.Fatal(err)
	}
	h := untilCancelled{started: make(chan struct{}, 1), cause: make(chan error, 1)}
	s := New(nil, Options{IPAM: &Endpoint{Handler: h}})
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	answer := make(chan *wire.Response, 1)
	go func() {
		answer <- post(t, socket, wire.IPAMPath, &wire.Request{Command: "ADD", ContainerID: "a", Config: []byte(`{"name":"n"}`)})
	}()
	select {
	case <-h.started:
	case r := <-answer:
		t.Fatalf("the request was answered %+v without running", r.Error)
	}
	waited, cancel := context.WithCancel(context.Background())
	cancel() // the shutdown's wait is over at once
	shutdown := make(chan error, 1)
	go func() { shutdown <- s.Shutdown(waited) }()
	select {
	case cause := <-h.cause:
		if !errors.Is(cause, errShutdown) {
			t.Errorf("the handler's context ended with %v, want %v", cause, errShutdown)
		}
	case <-time.After(time.Minute):
		t.Fatal("the running request's context did not end at shutdown")
	}
	if r := <-answer; r.Error == nil || r.Error.Code != cnierr.TryAgainLater || !strings.Contains(r.Error.Msg, "shutting down") {
		t.Errorf("answer of the cancelled request: %+v, want code 11 saying plexusd is shutting down", r.Error)
	}
	if err := <-shutdown; err == nil || !strings.Contains(err.Error(), "cancelled") {
		t.Errorf("Shutdown: %v, want an error saying requests were cancelled", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}
