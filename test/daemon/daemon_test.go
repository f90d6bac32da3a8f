package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/internal/cnierr"
	"github.com/plexus-cni/plexus/internal/testbed/nodesim"
)

// The daemon restarts (SIGTERM, start again) while pods come and go: every
// successful ADD has all its interfaces, every failed ADD left nothing,
// the configuration file never disappears, and no address leaks.
func TestRestartDuringPodChurn(t *testing.T) {
	w := newWorld(t)
	w.macvlanNAD("macvlan")
	n := w.newNode("churn-1")
	conf := w.daemonConfig(n, nil)
	d := w.start(n, conf)
	confFile := filepath.Join(n.ConfDir, "00-plexus.conflist")

	const workers, perWorker = 3, 10 // 30 ADD/DEL cycles
	c := &churn{t: t, w: w, n: n, progress: make(chan struct{}, workers*perWorker)}
	restarted := make(chan struct{})
	var wg sync.WaitGroup
	for worker := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				c.cycle(worker, i)
			}
		}()
	}
	// Restart after a third of the cycles, with the others still running.
	go func() {
		defer close(restarted)
		for range workers * perWorker / 3 {
			<-c.progress
		}
		d.stop(syscall.SIGTERM)
		if code := d.exitCode(); code != 0 {
			t.Errorf("plexusd exited with %d after SIGTERM", code)
		}
		if _, err := os.Stat(confFile); err != nil {
			t.Errorf("after SIGTERM the configuration file is gone: %v", err)
		}
		d = w.start(n, conf)
	}()
	wg.Wait()
	<-restarted
	t.Logf("%d ADDs succeeded, %d failed with the daemon away", c.succeeded, c.failed)
	if c.succeeded < workers*perWorker/2 {
		t.Errorf("only %d of %d ADDs succeeded", c.succeeded, workers*perWorker)
	}
	for dir, network := range map[string]string{w.hl: "macvlan", filepath.Join(n.StateDir, "cluster-ipam"): "cluster"} {
		if ips := held(t, dir, network); len(ips) > 0 {
			t.Errorf("host-local still holds %v on %s", ips, network)
		}
	}
	if recs, _ := filepath.Glob(filepath.Join(n.StateDir, "plexus", "attachments", "*.json")); len(recs) > 0 {
		t.Errorf("attachment records left: %v", recs)
	}
	if !strings.Contains(d.log.String(), "serving CNI on") {
		t.Errorf("restarted daemon log: %s", d.log.String())
	}
}

// churn runs ADD/DEL cycles and counts their outcomes.
type churn struct {
	t        *testing.T
	w        *world
	n        *node
	progress chan struct{}

	mu                sync.Mutex // guards the counters
	succeeded, failed int
}

// cycle runs one pod: a successful ADD must have every interface, a failed
// one (the daemon away) must have left none; then DEL.
func (c *churn) cycle(worker, i int) {
	t := c.t
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := c.n.RunPod(ctx, t, nodesim.PodSpec{Namespace: c.w.ns, Name: fmt.Sprintf("churn-%d-%d", worker, i),
		Annotations: netsAnnotation("macvlan")})
	if p == nil {
		t.Errorf("pod %d-%d: %v", worker, i, err)
		return
	}
	got := links(t, p)
	c.mu.Lock()
	if err != nil {
		c.failed++
		if !isUnreachable(err) {
			t.Errorf("pod %s: ADD failed other than 'daemon not reachable': %v", p.Name, err)
		}
		if !slices.Equal(got, []string{"lo"}) {
			t.Errorf("pod %s: failed ADD left interfaces %v", p.Name, got)
		}
	} else {
		c.succeeded++
		if !slices.Equal(got, []string{"eth0", "lo", "net1"}) {
			t.Errorf("pod %s: ADD succeeded with interfaces %v, want eth0, lo, net1", p.Name, got)
		}
	}
	c.mu.Unlock()
	if err := p.Remove(ctx); err != nil {
		t.Errorf("pod %s: DEL: %v", p.Name, err)
	}
	c.progress <- struct{}{}
}

// isUnreachable reports a shim error for a daemon that is away (code 50).
func isUnreachable(err error) bool {
	var e *types.Error
	return errors.As(err, &e) && e.Code == cnierr.PluginNotAvailable && strings.Contains(e.Msg, "plexusd is not reachable at")
}

// With the daemon killed, ADD fails at once naming the socket, and DEL
// tears the pod down in the shim's process from the attachment record.
func TestDaemonKilled(t *testing.T) {
	w := newWorld(t)
	w.macvlanNAD("macvlan")
	n := w.newNode("killed-1")
	d := w.start(n, w.daemonConfig(n, nil))
	p, err := n.RunPod(ctxFor(t, time.Minute), t, nodesim.PodSpec{Namespace: w.ns, Annotations: netsAnnotation("macvlan")})
	if err != nil {
		t.Fatal(err)
	}
	if got := links(t, p); !slices.Equal(got, []string{"eth0", "lo", "net1"}) {
		t.Fatalf("pod has %v", got)
	}
	_, metrics, err := n.get("/metrics")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`plexusd_cni_request_duration_seconds_count{command="ADD",network="%s/macvlan"} 1`, w.ns)
	if !strings.Contains(metrics, want) || !strings.Contains(metrics, `plexusd_informer_synced{resource="pods"} 1`) {
		t.Errorf("metrics lack %q or the pods cache sync state:\n%s", want, grepLines(metrics, "plexusd_"))
	}
	// The ADD's phases, the macvlan's delegate among them.
	for _, phase := range []string{`phase="admission",plugin=""`, `phase="plan",plugin=""`, `phase="record",plugin=""`,
		`phase="delegate",plugin="macvlan"`, `phase="status",plugin=""`, `phase="events",plugin=""`} {
		if want := "plexusd_add_phase_duration_seconds_count{" + phase + "} 1"; !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q:\n%s", want, grepLines(metrics, "plexusd_add_phase"))
		}
	}

	d.stop(syscall.SIGKILL)
	// A shim waiting for the daemon would outlive this context and report
	// the deadline instead of the daemon.
	_, err = n.RunPod(ctxFor(t, 20*time.Second), t, nodesim.PodSpec{Namespace: w.ns, Annotations: netsAnnotation("macvlan")})
	if err == nil || !isUnreachable(err) || !strings.Contains(err.Error(), n.socket) {
		t.Fatalf("ADD with the daemon killed: %v, want code 50 naming %s", err, n.socket)
	}
	if err := p.Del(ctxFor(t, time.Minute)); err != nil {
		t.Fatalf("DEL with the daemon killed: %v", err)
	}
	if got := links(t, p); !slices.Equal(got, []string{"lo"}) {
		t.Errorf("after DEL the pod has %v", got)
	}
	if ips := held(t, w.hl, "macvlan"); len(ips) > 0 {
		t.Errorf("host-local still holds %v", ips)
	}
	if _, err := os.Stat(filepath.Join(n.ConfDir, "00-plexus.conflist")); err != nil {
		t.Errorf("configuration file after SIGKILL: %v", err)
	}
}

func grepLines(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
