package plugin

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/internal/testbed/poll"
	"github.com/plexus-cni/plexus/pkg/ipam/config"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
	"github.com/plexus-cni/plexus/pkg/ipam/store/memstore"
)

// gatedStore is a memstore whose Allocate waits for its gate, recording
// the order of the calls.
type gatedStore struct {
	*memstore.Store
	entered, gate chan struct{}
	mu            sync.Mutex
	calls         []string
}

func (g *gatedStore) note(s string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, s)
}

func (g *gatedStore) Allocate(ctx context.Context, r store.Request) (store.Allocation, error) {
	close(g.entered)
	<-g.gate
	a, err := g.Store.Allocate(ctx, r)
	g.note("allocated " + r.Holder.ContainerID)
	return a, err
}

func (g *gatedStore) Release(ctx context.Context, k store.Key) error {
	g.note("released " + k.ContainerID)
	return g.Store.Release(ctx, k)
}

func (g *gatedStore) Close() error { return nil }

// A DEL arriving while the daemon still runs the ADD of the same
// attachment (its plexus-ipam was killed; the runtime DELs) waits for the
// ADD, then frees its address: nothing is left. Another attachment's
// request does not wait.
func TestDaemonDELWaitsForADD(t *testing.T) {
	g := &gatedStore{Store: memstore.New(), entered: make(chan struct{}), gate: make(chan struct{})}
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	writeKubeconfig(t, kc, "t")
	d := &Daemon{Base: newHarness(t).p, Stores: &StoreCache{Open: func(*config.Conf, Logf) (store.Store, error) { return g, nil }}}
	conf := `{"cniVersion":"1.0.0","name":"n","ipam":{"type":"plexus-ipam","range":"198.51.100.0/29",
		"kubernetes":{"kubeconfig":"` + kc + `","namespace":"ipam"}}}`
	a := args("c1", "net1", conf, "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p")
	addDone, delDone := make(chan error, 1), make(chan error, 1)
	env := map[string]string{"NODENAME": "node-a"}
	go func() { _, _, err := d.Do(t.Context(), Request{Command: "ADD", Args: a, Env: env}); addDone <- err }()
	<-g.entered
	go func() { _, _, err := d.Do(t.Context(), Request{Command: "DEL", Args: a, Env: env}); delDone <- err }()
	poll.Until(t, 10*time.Second, "the DEL waits for the attachment's lock, or runs", func() (bool, string) {
		g.mu.Lock()
		defer g.mu.Unlock()
		return d.locks.waiting("c1", "net1") == 2 || slices.Contains(g.calls, "released c1"), ""
	})
	if _, _, err := d.Do(t.Context(), Request{Command: "DEL", Args: args("c2", "net1", conf, ""), Env: env}); err != nil {
		t.Errorf("DEL of another attachment while c1's ADD runs: %v", err)
	}
	close(g.gate)
	if err := <-addDone; err != nil {
		t.Fatalf("ADD: %v", err)
	}
	if err := <-delDone; err != nil {
		t.Fatalf("DEL: %v", err)
	}
	g.mu.Lock()
	calls := g.calls
	g.mu.Unlock()
	if i, j := slices.Index(calls, "allocated c1"), slices.Index(calls, "released c1"); i < 0 || j < i {
		t.Errorf("calls %v: c1's DEL ran before the ADD it followed had allocated", calls)
	}
	if left, _ := g.Store.List(t.Context(), store.Filter{}); len(left) != 0 {
		t.Errorf("after the DEL: %v left allocated", left)
	}
	if n := d.locks.waiting("c1", "net1"); n != 0 {
		t.Errorf("%d requests still hold c1's lock", n)
	}
}

// A request waiting for its attachment's turn gives up when its context
// ends (the daemon shuts down, or the request's bound passes): code 11, and
// it no longer counts as waiting.
func TestDaemonWaitEndsWithContext(t *testing.T) {
	g := &gatedStore{Store: memstore.New(), entered: make(chan struct{}), gate: make(chan struct{})}
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	writeKubeconfig(t, kc, "t")
	d := &Daemon{Base: newHarness(t).p, Stores: &StoreCache{Open: func(*config.Conf, Logf) (store.Store, error) { return g, nil }}}
	conf := `{"cniVersion":"1.0.0","name":"n","ipam":{"type":"plexus-ipam","range":"198.51.100.0/29",
		"kubernetes":{"kubeconfig":"` + kc + `","namespace":"ipam"}}}`
	a := args("c1", "net1", conf, "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p")
	env := map[string]string{"NODENAME": "node-a"}
	addDone := make(chan error, 1)
	go func() { _, _, err := d.Do(t.Context(), Request{Command: "ADD", Args: a, Env: env}); addDone <- err }()
	<-g.entered
	ctx, cancel := context.WithCancel(t.Context())
	delDone := make(chan error, 1)
	go func() { _, _, err := d.Do(ctx, Request{Command: "DEL", Args: a, Env: env}); delDone <- err }()
	poll.Until(t, 10*time.Second, "the DEL waits for the attachment's turn", func() (bool, string) {
		return d.locks.waiting("c1", "net1") == 2, ""
	})
	cancel()
	if err := <-delDone; code(err) != types.ErrTryAgainLater {
		t.Errorf("DEL whose context ended while waiting: %v (code %d), want code %d", err, code(err), types.ErrTryAgainLater)
	}
	if n := d.locks.waiting("c1", "net1"); n != 1 {
		t.Errorf("%d requests hold or wait for c1's turn, want 1 (the ADD)", n)
	}
	close(g.gate)
	if err := <-addDone; err != nil {
		t.Fatalf("ADD: %v", err)
	}
	if n := d.locks.waiting("c1", "net1"); n != 0 {
		t.Errorf("%d requests still hold c1's turn", n)
	}
}
