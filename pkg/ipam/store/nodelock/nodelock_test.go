package nodelock_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/pkg/ipam/alloc"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
	"github.com/plexus-cni/plexus/pkg/ipam/store/kubestore"
	"github.com/plexus-cni/plexus/pkg/ipam/store/memstore"
	"github.com/plexus-cni/plexus/pkg/ipam/store/nodelock"
	"github.com/plexus-cni/plexus/pkg/ipam/store/storetest"
)

// A wrapped store keeps the store contract: the shared suite, with every
// client taking its turns through a lock directory of its backing. The
// suite's rival clients write while the victim is stopped inside its turn:
// they wait out a short Wait and go on without the lock.
func TestSuite(t *testing.T) {
	storetest.Run(t, func(t testing.TB) func(storetest.WriteHook) store.Store {
		s, dir := memstore.New(), t.TempDir()
		return func(h storetest.WriteHook) store.Store {
			return nodelock.Wrap(storetest.HookOps(s, h), &nodelock.Locker{Dir: dir, Wait: 300 * time.Millisecond, Logf: t.Logf})
		}
	}, storetest.Options{})
}

// notes collects a Locker's log.
type notes struct {
	mu  sync.Mutex
	got []string
}

func (n *notes) logf(format string, args ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = append(n.got, fmt.Sprintf(format, args...))
}

func (n *notes) String() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return strings.Join(n.got, "\n")
}

func TestLockTakesTurns(t *testing.T) {
	dir := t.TempDir()
	var log notes
	a := &nodelock.Locker{Dir: dir}
	b := &nodelock.Locker{Dir: dir, Wait: 100 * time.Millisecond, Logf: log.logf}
	unlock, err := a.Lock(t.Context(), "net:a")
	if err != nil {
		t.Fatal(err)
	}

	// Another space is not held up.
	other, err := b.Lock(t.Context(), "net:b")
	if err != nil || log.String() != "" {
		t.Fatalf("lock of another space: %v; notes %q", err, log.String())
	}
	other()

	// A waiter whose context ends gets ErrUnavailable and no turn.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := b.Lock(ctx, "net:a"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("lock with an ended context while held: %v, want ErrUnavailable", err)
	}

	// A waiter that waits longer than Wait runs without the lock, and says so.
	got := make(chan struct{})
	go func() {
		u, err := b.Lock(t.Context(), "net:a")
		if err == nil {
			u()
		}
		close(got)
	}()
	select {
	case <-got:
	case <-time.After(time.Minute):
		t.Fatal("a waiter past its Wait still waits")
	}
	if n := log.String(); !strings.Contains(n, `running without the node's lock of space "net:a"`) || !strings.Contains(n, "still taken") {
		t.Fatalf("notes %q, want one on running without the lock", n)
	}

	// Dropped, the lock is had at once; a waiter for it (the checks above
	// show that it waits) gets its turn when the holder drops it.
	unlock()
	held, err := b.Lock(t.Context(), "net:a")
	if err != nil {
		t.Fatal(err)
	}
	turn := make(chan func(), 1)
	go func() {
		u, err := a.Lock(t.Context(), "net:a")
		if err != nil {
			t.Error(err)
			u = func() {}
		}
		turn <- u
	}()
	held()
	select {
	case u := <-turn:
		u()
	case <-time.After(time.Minute):
		t.Fatal("the waiter never got its turn after the holder dropped the lock")
	}
}

// A directory that cannot be made costs the lock, never the call.
func TestUnusableDirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var log notes
	s := nodelock.Wrap(memstore.New(), &nodelock.Locker{Dir: filepath.Join(file, "locks"), Logf: log.logf})
	r := mustRange(t, "198.51.100.0/28")
	a, err := s.Allocate(t.Context(), store.Request{Space: "net:x", Range: r, Holder: store.Holder{ContainerID: "c", IfName: "net1"}})
	if err != nil || a.Address != netip.MustParseAddr("198.51.100.1") {
		t.Fatalf("Allocate without a usable lock directory: %v, %v", a.Address, err)
	}
	if !strings.Contains(log.String(), "running without the node's lock") {
		t.Fatalf("notes %q, want one on running without the lock", log.String())
	}
	if err := s.Release(t.Context(), store.Key{Space: "net:x", ContainerID: "c", IfName: "net1"}); err != nil {
		t.Fatal(err)
	}
}

// Forty plugin processes of one node at once (each its own store client,
// as plexus-ipam-local runs without plexusd), taking turns through the
// node's lock: the lowest forty addresses, one each, no lost race, and at
// most four API requests per allocation (read the index, create the
// attachment and the allocation, write the index). Without the lock the
// same burst loses races and makes 16–23 requests per allocation.
func TestProcessesOfOneNodeTakeTurns(t *testing.T) {
	env := testbed.Require(t)
	ns := env.Namespace(t, "ipam-nodelock")
	dir := t.TempDir()
	r := mustRange(t, "10.42.0.0/24")
	const n = 40
	clients := make([]store.Store, n)
	for i := range clients {
		clients[i] = nodelock.Wrap(mustKube(t, env, ns), &nodelock.Locker{Dir: dir, Logf: t.Logf})
	}
	// The space's index exists already (its first allocation creates it).
	first := nodelock.Wrap(mustKube(t, env, ns), &nodelock.Locker{Dir: dir})
	if _, err := first.Allocate(t.Context(), store.Request{Space: "net:", Range: r, Holder: store.Holder{ContainerID: "first", IfName: "net1"}}); err != nil {
		t.Fatal(err)
	}
	got := make([]netip.Addr, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, s := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := s.Allocate(t.Context(), store.Request{Space: "net:", Range: r,
				Holder: store.Holder{ContainerID: fmt.Sprintf("c%d", i), IfName: "net1"}})
			got[i], errs[i] = a.Address, err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(a, b netip.Addr) int { return a.Compare(b) })
	want := netip.MustParseAddr("10.42.0.2")
	for _, a := range got {
		if a != want {
			t.Fatalf("addresses %v, want the lowest %d free of the range, one each", got, n)
		}
		want = want.Next()
	}
	var sum store.Stats
	for _, s := range clients {
		st := s.(interface{ Stats() store.Stats }).Stats()
		sum.Requests += st.Requests
		sum.ClaimConflicts += st.ClaimConflicts
		sum.IndexConflicts += st.IndexConflicts
	}
	t.Logf("%d allocations: %d requests, %d lost races, %d index conflicts", n, sum.Requests, sum.ClaimConflicts, sum.IndexConflicts)
	if sum.ClaimConflicts != 0 || sum.IndexConflicts != 0 || sum.Requests > 4*n {
		t.Errorf("%d requests (%.1f per allocation), %d lost races, %d index conflicts; want at most 4 per allocation and none lost",
			sum.Requests, float64(sum.Requests)/n, sum.ClaimConflicts, sum.IndexConflicts)
	}
}

func mustKube(t *testing.T, env *testbed.Env, ns string) *kubestore.Store {
	t.Helper()
	s, err := kubestore.New(env.RESTConfig, kubestore.Options{Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustRange(t *testing.T, cidr string) *alloc.Range {
	t.Helper()
	r, err := alloc.NewRange(netip.MustParsePrefix(cidr), netip.Addr{}, netip.Addr{}, netip.Addr{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
