package storetest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

// WriteHook is told about every write a client sends: a request that may
// change the store (an API create, update or delete; an etcd transaction
// with a put or a delete; a memstore mutation). Before may fail the write,
// which is then not sent; After may replace the reply of a sent and
// applied write with an error (the reply was lost).
type WriteHook interface {
	Before() error
	After() error
}

// Mode is how an Interrupt interrupts.
type Mode int

const (
	// Crash: the At-th write and every later one fail unsent, as when the
	// process is killed just before sending it (or, what leaves the same
	// state, just after the write before it).
	Crash Mode = iota
	// FailOnce: the At-th write fails unsent; later ones go through.
	FailOnce
	// LostReply: the At-th write is applied but its reply is lost; later
	// ones go through.
	LostReply
)

func (m Mode) String() string {
	return [...]string{"crash", "fail-once", "lost-reply"}[m]
}

// ErrInterrupted is the error an Interrupt injects.
var ErrInterrupted = errors.New("storetest: write interrupted")

// Interrupt is a WriteHook that interrupts a client at its At-th write
// (1-based). First, when set, runs before the first write is sent (a
// competing client takes an address then, so that the interrupted one
// loses a race).
type Interrupt struct {
	At    int
	Mode  Mode
	First func()

	mu     sync.Mutex
	writes int
	fired  bool
}

// Before implements WriteHook.
func (i *Interrupt) Before() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.writes++
	if i.writes == 1 && i.First != nil {
		i.First()
	}
	if i.Mode == Crash && i.writes >= i.At || i.Mode == FailOnce && i.writes == i.At {
		i.fired = true
		return fmt.Errorf("write %d: %w", i.writes, ErrInterrupted)
	}
	return nil
}

// After implements WriteHook.
func (i *Interrupt) After() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.Mode == LostReply && i.writes == i.At {
		i.fired = true
		return fmt.Errorf("reply to write %d: %w", i.writes, ErrInterrupted)
	}
	return nil
}

// Fired reports whether the interruption happened.
func (i *Interrupt) Fired() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.fired
}

// Writes returns how many writes the client tried to send.
func (i *Interrupt) Writes() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.writes
}

// HookOps makes every mutating call of s one write for h (s nil-safe: h
// nil returns s). Stores whose calls are atomic (memstore) get the
// interruption scenarios this way.
func HookOps(s store.Store, h WriteHook) store.Store {
	if h == nil {
		return s
	}
	return &hooked{Store: s, h: h}
}

type hooked struct {
	store.Store
	h WriteHook
}

func (s *hooked) write(f func() error) error {
	if err := s.h.Before(); err != nil {
		return err
	}
	if err := f(); err != nil {
		return err
	}
	return s.h.After()
}

func (s *hooked) Allocate(ctx context.Context, r store.Request) (a store.Allocation, err error) {
	err = s.write(func() error { a, err = s.Store.Allocate(ctx, r); return err })
	return a, err
}

func (s *hooked) Release(ctx context.Context, k store.Key) error {
	return s.write(func() error { return s.Store.Release(ctx, k) })
}

func (s *hooked) Free(ctx context.Context, space string, addr netip.Addr) error {
	return s.write(func() error { return s.Store.Free(ctx, space, addr) })
}

func (s *hooked) FreeHeld(ctx context.Context, a store.Allocation) error {
	return s.write(func() error { return s.Store.FreeHeld(ctx, a) })
}

func (s *hooked) Transfer(ctx context.Context, k store.Key, to store.Holder) (a store.Allocation, err error) {
	err = s.write(func() error { a, err = s.Store.Transfer(ctx, k, to); return err })
	return a, err
}

func (s *hooked) Holders(ctx context.Context, space string) ([]store.HolderRecord, error) {
	if hl, ok := s.Store.(store.HolderLister); ok {
		return hl.Holders(ctx, space)
	}
	return nil, errors.New("not a store.HolderLister")
}

// maxWrites bounds the interruption points tried per operation.
const maxWrites = 40

// interruptCase is one operation interrupted at every write in turn.
type interruptCase struct {
	name string
	// rival: a competing client takes the victim's first candidate just
	// before the victim's first write.
	rival bool
	// setup runs with a working client before the interrupted operation.
	setup func(t *testing.T, s store.Store, space string)
	op    func(ctx context.Context, s store.Store, space string) error
	// finish is what comes after the interruption, with a working client:
	// nil, the runtime's DEL (a Release of the victim's key).
	finish func(t *testing.T, s store.Store, space string)
}

// testInterrupted: an ADD (fresh, after a lost race, moving to another
// requested address) or a DEL interrupted at its n-th write, for every n
// and each Mode, then the runtime's DEL (a Release with a working
// client); or a reclaimer's FreeHeld interrupted, then its next pass (List
// and FreeHeld again). Nothing of the victim may be left, neither an
// allocation nor a holder record nor an index entry.
func testInterrupted(t *testing.T, open func(WriteHook) store.Store) {
	r := mkRange(t, "10.9.0.0/27", "", "", "")
	victim := func(space string) store.Request { return req(space, r, "victim") }
	cases := []interruptCase{
		{name: "add", op: func(ctx context.Context, s store.Store, space string) error {
			_, err := s.Allocate(ctx, victim(space))
			return err
		}},
		{name: "add-lost-race", rival: true, setup: warmUp, op: func(ctx context.Context, s store.Store, space string) error {
			_, err := s.Allocate(ctx, victim(space))
			return err
		}},
		{name: "add-move", setup: func(t *testing.T, s store.Store, space string) { mustAlloc(t, s, victim(space)) },
			op: func(ctx context.Context, s store.Store, space string) error {
				rq := victim(space)
				rq.Want = netip.MustParseAddr("10.9.0.20")
				_, err := s.Allocate(ctx, rq)
				return err
			}},
		{name: "del", setup: func(t *testing.T, s store.Store, space string) { mustAlloc(t, s, victim(space)) },
			op: func(ctx context.Context, s store.Store, space string) error {
				return s.Release(ctx, victim(space).Key())
			}},
	}
	freeHeld := func(ctx context.Context, s store.Store, space string) error {
		all, err := s.List(ctx, store.Filter{Space: space, ContainerID: "victim"})
		for _, a := range all {
			err = errors.Join(err, s.FreeHeld(ctx, a))
		}
		return err
	}
	cases = append(cases, interruptCase{name: "free-held",
		setup: func(t *testing.T, s store.Store, space string) { mustAlloc(t, s, victim(space)) },
		op:    freeHeld,
		finish: func(t *testing.T, s store.Store, space string) {
			if err := freeHeld(ctx(t), s, space); err != nil {
				t.Errorf("the next pass's FreeHeld: %v", err)
			}
			repairIndex(t, s, space)
		}})
	clean := open(nil)
	for _, mode := range []Mode{Crash, FailOnce, LostReply} {
		for _, c := range cases {
			t.Run(c.name+"/"+mode.String(), func(t *testing.T) {
				interruptEveryWrite(t, open, clean, c, mode, victim)
			})
		}
	}
}

// repairIndex does what the reclaimer does after each pass: it rebuilds
// an index that marks more addresses than the space holds.
func repairIndex(t *testing.T, s store.Store, space string) {
	held, err := s.List(ctx(t), store.Filter{Space: space})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	spaces, err := s.Spaces(ctx(t))
	if err != nil {
		t.Fatalf("Spaces: %v", err)
	}
	for _, sp := range spaces {
		if sp.Space == space && sp.Allocated > uint64(len(held)) {
			if err := s.RebuildIndex(ctx(t), space); err != nil {
				t.Errorf("RebuildIndex: %v", err)
			}
		}
	}
}

// warmUp makes the space's index exist (an allocation made and released),
// so that the victim's first write is its own and the rival, which takes
// the address just before it, makes it lose a race.
func warmUp(t *testing.T, s store.Store, space string) {
	rq := req(space, mkRange(t, "10.9.0.0/27", "", "", ""), "warm-up")
	mustAlloc(t, s, rq)
	if err := s.Release(ctx(t), rq.Key()); err != nil {
		t.Fatalf("Release: %v", err)
	}
}

// interruptEveryWrite runs c interrupted at write 1, 2, ... until it
// finishes before the interruption point. (A LostReply interruption of a
// write the store refused, such as a create of an existing object, does
// not fire: the write changed nothing.)
func interruptEveryWrite(t *testing.T, open func(WriteHook) store.Store, clean store.Store, c interruptCase, mode Mode, victim func(string) store.Request) {
	for n := 1; n <= maxWrites; n++ {
		space := fmt.Sprintf("int-%s-%s-%d", c.name, mode, n)
		if c.setup != nil {
			c.setup(t, clean, space)
		}
		var rival []store.Allocation
		it := &Interrupt{At: n, Mode: mode}
		if c.rival {
			it.First = func() {
				rq := victim(space)
				rq.Holder.ContainerID = "rival"
				a, err := clean.Allocate(ctx(t), rq)
				if err != nil {
					t.Errorf("rival's Allocate: %v", err)
				}
				rival = append(rival, a)
			}
		}
		err := c.op(ctx(t), open(it), space)
		if c.finish != nil {
			c.finish(t, clean, space)
		} else if derr := clean.Release(ctx(t), victim(space).Key()); derr != nil {
			t.Errorf("interrupted at write %d (op error: %v): the runtime's DEL failed: %v", n, err, derr)
		}
		expectOnly(t, clean, space, rival, fmt.Sprintf("interrupted at write %d (op error: %v)", n, err))
		if it.Writes() < n {
			if n == 1 {
				t.Fatalf("the operation made no write")
			}
			t.Logf("%d interruption points", n-1)
			return
		}
	}
	t.Fatalf("the operation still wrote after %d writes", maxWrites)
}

// expectOnly checks that space holds exactly the allocations want: no
// other allocation, holder record or index entry.
func expectOnly(t *testing.T, s store.Store, space string, want []store.Allocation, what string) {
	t.Helper()
	got, err := s.List(ctx(t), store.Filter{Space: space})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	wantAddr := map[netip.Addr]store.Key{}
	for _, a := range want {
		wantAddr[a.Address] = a.Key()
	}
	for _, a := range got {
		if k, ok := wantAddr[a.Address]; !ok || k != a.Key() {
			t.Errorf("%s: %s left allocated to %s/%s", what, a.Address, a.ContainerID, a.IfName)
		}
	}
	if len(got) < len(want) {
		t.Errorf("%s: %d allocations, want %d: %v", what, len(got), len(want), want)
	}
	if hl, ok := s.(store.HolderLister); ok {
		hs, err := hl.Holders(ctx(t), space)
		if err != nil {
			t.Fatalf("Holders: %v", err)
		}
		for _, h := range hs {
			if k, ok := wantAddr[h.Address]; !ok || k != h.Key {
				t.Errorf("%s: holder record of %s/%s (pointing at %s) left", what, h.ContainerID, h.IfName, h.Address)
			}
		}
	}
	spaces, err := s.Spaces(ctx(t))
	if err != nil {
		t.Fatalf("Spaces: %v", err)
	}
	for _, sp := range spaces {
		if sp.Space == space && sp.Allocated != uint64(len(want)) {
			t.Errorf("%s: the index counts %d allocated, want %d", what, sp.Allocated, len(want))
		}
	}
}
