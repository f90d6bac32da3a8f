// Package dhcpd runs the reference dhcp IPAM plugin's daemon on plexusd's
// node while anything there uses DHCP: a NetworkAttachmentDefinition whose
// configuration has dhcp IPAM, or a sandbox on the node that holds a DHCP
// lease (its attachment record says so). The daemon is the plugin's own
// binary (`dhcp daemon`) shipped in plexus's image; it listens where the
// plugin dials it (/run/cni/dhcp.sock on the node). plexusd supervises it:
// it starts it when DHCP comes into use, restarts it (with backoff) when it
// dies, and stops it when nothing uses DHCP any more.
//
// The daemon keeps its leases in memory only. After every start, before
// anything else, plexusd asks it to allocate again for each lease its
// node's records hold, with the same arguments as the ADD that took it: the
// daemon keys a lease by container, network and interface and the server by
// the same client ID, so each sandbox gets its own address back and the
// daemon renews it from then on (and releases it on DEL), instead of letting
// it run out. A socket that already answers when plexusd would start its
// daemon belongs to a daemon the operator runs: plexusd leaves it alone.
package dhcpd

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Mode says when plexusd runs the daemon.
type Mode string

const (
	// Auto runs it while a NAD or a lease on the node uses it.
	Auto Mode = "auto"
	// Always runs it whatever uses it.
	Always Mode = "always"
	// Off never runs it (the operator runs one, or DHCP is not used).
	Off Mode = "off"
)

// ParseMode checks a mode's name.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Auto, Always, Off:
		return m, nil
	}
	return "", fmt.Errorf("%q is not auto, always or off", s)
}

// Process is a started daemon.
type Process interface {
	// Done is closed when the process has exited; Err then says why.
	Done() <-chan struct{}
	Err() error
	// Stop asks it to end (SIGTERM), then kills it after timeout.
	Stop(timeout time.Duration)
}

// World is what the supervisor reads and runs; tests fake it.
type World interface {
	// NADsUse reports whether any NAD's configuration uses the daemon.
	NADsUse() bool
	// Leases lists the DHCP leases the node's sandboxes hold.
	Leases() ([]Lease, error)
	// Answers reports whether a daemon answers on the socket.
	Answers() bool
	// Start starts the daemon (after removing a stale socket).
	Start() (Process, error)
	// Reacquire asks the running daemon to take lease again; it holds the
	// sandbox's lock meanwhile and skips a sandbox that is gone.
	Reacquire(ctx context.Context, l Lease) error
}

// Recorder counts what the supervisor does.
type Recorder interface {
	// DHCPDaemon sets whether plexusd's daemon runs.
	DHCPDaemon(running bool)
	// DHCPDaemonStart counts a start: reason "start" or "restart" (it had died).
	DHCPDaemonStart(reason string)
	// DHCPLeaseReacquired counts a lease taken again, result "ok" or "error".
	DHCPLeaseReacquired(result string)
}

// Logger is plexusd's logger.
type Logger interface {
	Infof(format string, args ...any)
	Errorf(format string, args ...any)
}

// Supervisor runs the daemon as the mode and the world say.
type Supervisor struct {
	Mode    Mode
	World   World
	Metrics Recorder
	Log     Logger
	// Resync is how often use is checked again without a Poke (default 30 s).
	Resync time.Duration
	// Ready bounds the wait for a started daemon's socket (default 10 s).
	Ready time.Duration
	// Backoff is the first wait before a restart; it doubles up to
	// MaxBackoff while the daemon keeps dying within a minute of its start.
	Backoff, MaxBackoff time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time

	once sync.Once
	poke chan struct{}

	// The loop's state (Run's goroutine only).
	proc      Process
	started   time.Time
	notBefore time.Time
	backoff   time.Duration
	external  bool // the last check found another daemon on the socket
	died      bool // the last process exited on its own: the next start is a restart
}

func (s *Supervisor) init() {
	s.once.Do(func() {
		s.poke = make(chan struct{}, 1)
		if s.Resync <= 0 {
			s.Resync = 30 * time.Second
		}
		if s.Ready <= 0 {
			s.Ready = 10 * time.Second
		}
		if s.Backoff <= 0 {
			s.Backoff = time.Second
		}
		if s.MaxBackoff <= 0 {
			s.MaxBackoff = 30 * time.Second
		}
		if s.Now == nil {
			s.Now = time.Now
		}
		s.backoff = s.Backoff
	})
}

// Poke makes the supervisor check use now (a NAD changed, a sandbox was
// deleted). It never blocks.
func (s *Supervisor) Poke() {
	s.init()
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

// Run supervises the daemon until ctx ends, then stops it.
func (s *Supervisor) Run(ctx context.Context) {
	s.init()
	tick := time.NewTicker(s.Resync)
	defer tick.Stop()
	wake := time.NewTimer(0)
	defer wake.Stop()
	for {
		var done <-chan struct{}
		if s.proc != nil {
			done = s.proc.Done()
		}
		select {
		case <-ctx.Done():
			s.stop("plexusd is stopping")
			return
		case <-done:
			s.exited()
		case <-s.poke:
		case <-tick.C:
		case <-wake.C:
		}
		s.Step(ctx)
		if s.proc == nil && s.Now().Before(s.notBefore) {
			wake.Reset(s.notBefore.Sub(s.Now()))
		}
	}
}

// Step checks use once and starts or stops the daemon accordingly. Run
// calls it; tests call it directly.
func (s *Supervisor) Step(ctx context.Context) {
	s.init()
	want, why := s.wanted()
	switch {
	case want && s.proc == nil:
		if s.Now().Before(s.notBefore) {
			return // Run wakes at notBefore
		}
		s.start(ctx, why)
	case !want && s.proc != nil:
		s.stop("nothing on this node uses DHCP any more")
	}
}

// wanted reports whether the daemon should run, and why.
func (s *Supervisor) wanted() (bool, string) {
	switch s.Mode {
	case Off:
		return false, ""
	case Always:
		return true, "dhcpDaemon is always"
	}
	if s.World.NADsUse() {
		return true, "a NetworkAttachmentDefinition uses dhcp IPAM"
	}
	leases, err := s.World.Leases()
	if err != nil {
		// Unsure: keep what runs, so that no lease goes unrenewed.
		s.Log.Errorf("DHCP daemon: reading the attachment records: %v", err)
		return s.proc != nil, "the records could not be read"
	}
	if len(leases) > 0 {
		return true, fmt.Sprintf("%d DHCP leases of sandboxes on this node", len(leases))
	}
	return false, ""
}

func (s *Supervisor) start(ctx context.Context, why string) {
	if s.World.Answers() {
		if !s.external {
			s.Log.Infof("DHCP daemon: another daemon answers on the socket; plexusd does not start its own")
		}
		s.external = true
		return
	}
	s.external = false
	p, err := s.World.Start()
	if err != nil {
		s.Log.Errorf("DHCP daemon: cannot start it: %v", err)
		s.scheduleRestart()
		return
	}
	reason := "start"
	if s.died {
		reason = "restart"
	}
	s.proc, s.started, s.died = p, s.Now(), false
	s.Metrics.DHCPDaemonStart(reason)
	s.Metrics.DHCPDaemon(true)
	s.Log.Infof("DHCP daemon: started (%s: %s)", reason, why)
	if !s.waitReady(ctx, p) {
		return // it died: Run restarts it
	}
	s.reacquire(ctx)
}

// waitReady waits until the daemon answers, it exits or Ready passes.
func (s *Supervisor) waitReady(ctx context.Context, p Process) bool {
	deadline := time.NewTimer(s.Ready)
	defer deadline.Stop()
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for !s.World.Answers() {
		select {
		case <-p.Done():
			return false
		case <-ctx.Done():
			return false
		case <-deadline.C:
			s.Log.Errorf("DHCP daemon: its socket does not answer %v after its start", s.Ready)
			return false
		case <-poll.C:
		}
	}
	return true
}

// reacquireWorkers take leases again at once: one whose server does not
// answer waits out the daemon's timeouts, and the others need not wait
// behind it.
const reacquireWorkers = 8

// reacquire takes every lease of the node's sandboxes again.
func (s *Supervisor) reacquire(ctx context.Context) {
	leases, err := s.World.Leases()
	if err != nil {
		s.Log.Errorf("DHCP daemon: reading the attachment records to take their leases again: %v", err)
		return
	}
	var ok atomic.Int64
	work := make(chan Lease)
	var wg sync.WaitGroup
	for range min(reacquireWorkers, len(leases)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l := range work {
				if err := s.World.Reacquire(ctx, l); err != nil {
					s.Metrics.DHCPLeaseReacquired("error")
					s.Log.Errorf("DHCP daemon: lease of sandbox %s, %s (network %s) not taken again: %v", l.ContainerID, l.IfName, l.Network, err)
					continue
				}
				ok.Add(1)
				s.Metrics.DHCPLeaseReacquired("ok")
			}
		}()
	}
	for _, l := range leases {
		work <- l
	}
	close(work)
	wg.Wait()
	if len(leases) > 0 {
		s.Log.Infof("DHCP daemon: %d of %d leases of this node's sandboxes taken again", ok.Load(), len(leases))
	}
}

// exited handles a daemon that ended on its own.
func (s *Supervisor) exited() {
	err := s.proc.Err()
	ran := s.Now().Sub(s.started)
	s.proc, s.died = nil, true
	s.Metrics.DHCPDaemon(false)
	if ran > time.Minute {
		s.backoff = s.Backoff
	}
	s.Log.Errorf("DHCP daemon: exited after %v (%v); restarting in %v", ran.Round(time.Millisecond), exitReason(err), s.backoff)
	s.scheduleRestart()
}

func (s *Supervisor) scheduleRestart() {
	s.notBefore = s.Now().Add(s.backoff)
	s.backoff = min(2*s.backoff, s.MaxBackoff)
}

func (s *Supervisor) stop(why string) {
	if s.proc == nil {
		return
	}
	s.Log.Infof("DHCP daemon: stopping it (%s)", why)
	s.proc.Stop(5 * time.Second)
	s.proc = nil
	s.Metrics.DHCPDaemon(false)
}

func exitReason(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}
