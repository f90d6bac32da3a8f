package dhcpd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/plexus-cni/plexus/internal/testbed/poll"
)

// world is a fake node: what uses DHCP, and the daemons it started.
type world struct {
	mu         sync.Mutex
	nadsUse    bool
	leases     []Lease
	leasesErr  error
	external   bool // another daemon answers
	startErr   error
	procs      []*fakeProc
	reacquired []string // container IDs, in order
}

func (w *world) NADsUse() bool { w.mu.Lock(); defer w.mu.Unlock(); return w.nadsUse }
func (w *world) Leases() ([]Lease, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.leases), w.leasesErr
}
func (w *world) Answers() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.external || w.running() != nil
}
func (w *world) Start() (Process, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.startErr != nil {
		return nil, w.startErr
	}
	p := &fakeProc{done: make(chan struct{})}
	w.procs = append(w.procs, p)
	return p, nil
}
func (w *world) Reacquire(_ context.Context, l Lease) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.reacquired = append(w.reacquired, l.ContainerID)
	if l.ContainerID == "broken" {
		return errors.New("netns gone")
	}
	return nil
}

// running is the daemon that runs, if any (w.mu held).
func (w *world) running() *fakeProc {
	for _, p := range w.procs {
		if !p.exited() {
			return p
		}
	}
	return nil
}

type fakeProc struct {
	once    sync.Once
	done    chan struct{}
	stopped bool
}

func (p *fakeProc) Done() <-chan struct{} { return p.done }
func (p *fakeProc) Err() error            { return fmt.Errorf("signal: killed") }
func (p *fakeProc) Stop(time.Duration)    { p.stopped = true; p.die() }
func (p *fakeProc) die()                  { p.once.Do(func() { close(p.done) }) }
func (p *fakeProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

type recorder struct {
	mu         sync.Mutex
	running    bool
	starts     []string
	reacquired map[string]int
}

func (r *recorder) DHCPDaemon(running bool) { r.mu.Lock(); r.running = running; r.mu.Unlock() }
func (r *recorder) DHCPDaemonStart(reason string) {
	r.mu.Lock()
	r.starts = append(r.starts, reason)
	r.mu.Unlock()
}
func (r *recorder) DHCPLeaseReacquired(result string) {
	r.mu.Lock()
	if r.reacquired == nil {
		r.reacquired = map[string]int{}
	}
	r.reacquired[result]++
	r.mu.Unlock()
}

type nolog struct{}

func (nolog) Infof(string, ...any)  {}
func (nolog) Errorf(string, ...any) {}

// clock is a settable clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func supervisor(mode Mode, w *world) (*Supervisor, *recorder, *clock) {
	r, c := &recorder{}, &clock{t: time.Unix(1_000_000, 0)}
	return &Supervisor{Mode: mode, World: w, Metrics: r, Log: nolog{}, Now: c.now, Ready: time.Second}, r, c
}

func TestStartsWhileANADUsesDHCPAndStopsAfter(t *testing.T) {
	w := &world{}
	s, r, _ := supervisor(Auto, w)
	s.Step(t.Context())
	if len(w.procs) != 0 {
		t.Fatal("started a daemon while nothing uses DHCP")
	}
	w.nadsUse = true
	s.Step(t.Context())
	s.Step(t.Context())
	if len(w.procs) != 1 || w.procs[0].exited() || !r.running || !slices.Equal(r.starts, []string{"start"}) {
		t.Fatalf("a NAD uses DHCP: daemons %d, running %v, starts %v; want one running, started once", len(w.procs), r.running, r.starts)
	}
	w.nadsUse = false
	s.Step(t.Context())
	if !w.procs[0].stopped || r.running {
		t.Fatal("nothing uses DHCP any more and the daemon still runs")
	}
}

func TestRunsWhileSandboxesHoldLeases(t *testing.T) {
	// The NAD is gone but a pod on the node still holds its lease: the
	// daemon must stay, to renew it and to release it on DEL.
	w := &world{leases: []Lease{{ContainerID: "a", IfName: "net1"}}}
	s, _, _ := supervisor(Auto, w)
	s.Step(t.Context())
	if len(w.procs) != 1 {
		t.Fatal("no daemon while a sandbox holds a DHCP lease")
	}
	w.leasesErr = errors.New("permission denied")
	s.Step(t.Context())
	if w.procs[0].exited() {
		t.Fatal("stopped the daemon when the records could not be read")
	}
	w.leases, w.leasesErr = nil, nil
	s.Step(t.Context())
	if !w.procs[0].exited() {
		t.Fatal("the last lease is gone and the daemon still runs")
	}
}

func TestRestartTakesTheLeasesAgain(t *testing.T) {
	w := &world{nadsUse: true, leases: []Lease{{ContainerID: "a"}, {ContainerID: "broken"}, {ContainerID: "b"}}}
	s, r, c := supervisor(Auto, w)
	s.Backoff = 4 * time.Second
	s.Step(t.Context())
	if got := sorted(w.reacquired); !slices.Equal(got, []string{"a", "b", "broken"}) {
		t.Fatalf("after the start, leases taken again: %v; want every one", got)
	}

	w.procs[0].die() // killed
	s.exited()
	s.Step(t.Context())
	if len(w.procs) != 1 {
		t.Fatal("restarted at once, without backoff")
	}
	c.t = c.t.Add(4 * time.Second)
	s.Step(t.Context())
	if len(w.procs) != 2 || w.procs[1].exited() {
		t.Fatalf("daemons %d: not restarted after the backoff", len(w.procs))
	}
	if !slices.Equal(r.starts, []string{"start", "restart"}) {
		t.Errorf("starts = %v, want start then restart", r.starts)
	}
	if got := sorted(w.reacquired); !slices.Equal(got, []string{"a", "a", "b", "b", "broken", "broken"}) {
		t.Errorf("after the restart, leases taken again: %v; want every one again", got)
	}
	if r.reacquired["ok"] != 4 || r.reacquired["error"] != 2 {
		t.Errorf("reacquired = %v, want ok 4, error 2", r.reacquired)
	}

	// Dying again soon: the backoff doubles.
	w.procs[1].die()
	s.exited()
	c.t = c.t.Add(4 * time.Second)
	s.Step(t.Context())
	if len(w.procs) != 2 {
		t.Fatal("a daemon that keeps dying was restarted without a longer backoff")
	}
	c.t = c.t.Add(4 * time.Second)
	s.Step(t.Context())
	if len(w.procs) != 3 {
		t.Fatal("not restarted after the doubled backoff")
	}
}

func TestAnotherDaemonIsLeftAlone(t *testing.T) {
	w := &world{nadsUse: true, external: true}
	s, _, _ := supervisor(Auto, w)
	s.Step(t.Context())
	if len(w.procs) != 0 {
		t.Fatal("started a second daemon on a socket another one serves")
	}
	w.external = false // the operator's daemon went away
	s.Step(t.Context())
	if len(w.procs) != 1 {
		t.Fatal("no daemon after the other one went away")
	}
}

func TestModes(t *testing.T) {
	w := &world{nadsUse: true}
	s, _, _ := supervisor(Off, w)
	s.Step(t.Context())
	if len(w.procs) != 0 {
		t.Fatal("off started a daemon")
	}
	w = &world{}
	s, _, _ = supervisor(Always, w)
	s.Step(t.Context())
	if len(w.procs) != 1 {
		t.Fatal("always did not start one")
	}
	if _, err := ParseMode("sometimes"); err == nil {
		t.Error(`ParseMode("sometimes") succeeded`)
	}
}

func TestStartFailureIsRetried(t *testing.T) {
	w := &world{nadsUse: true, startErr: errors.New("no such file")}
	s, r, c := supervisor(Auto, w)
	s.Step(t.Context())
	w.startErr = nil
	s.Step(t.Context())
	if len(w.procs) != 0 {
		t.Fatal("retried at once")
	}
	c.t = c.t.Add(time.Second)
	s.Step(t.Context())
	if len(w.procs) != 1 || !slices.Equal(r.starts, []string{"start"}) {
		t.Fatalf("daemons %d, starts %v: not started after the failed start's backoff", len(w.procs), r.starts)
	}
}

// Run restarts a daemon that died, by itself, and stops it when ctx ends.
func TestRunRestartsAndStops(t *testing.T) {
	w := &world{nadsUse: true}
	r := &recorder{}
	s := &Supervisor{Mode: Auto, World: w, Metrics: r, Log: nolog{}, Backoff: time.Millisecond, Ready: time.Second}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	started := func(n int) func() (bool, string) {
		return poll.True(func() bool { w.mu.Lock(); defer w.mu.Unlock(); return len(w.procs) == n })
	}
	poll.Until(t, 10*time.Second, "the first start", started(1))
	w.mu.Lock()
	w.procs[0].die()
	w.mu.Unlock()
	poll.Until(t, 10*time.Second, "the restart", started(2))
	cancel()
	<-done
	if !w.procs[1].stopped {
		t.Fatal("the daemon runs on after Run returned")
	}
}

func sorted(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
