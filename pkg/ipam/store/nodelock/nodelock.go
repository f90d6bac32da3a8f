// Package nodelock makes the store clients of one node take turns per
// address space. Without plexusd, every pod's plexus-ipam runs as its own
// process with its own store client; a burst of them on one node reads the
// same index, races for the same lowest address and writes the index once
// each (16–23 API requests per allocation for 40 at once). Taking a lock
// file per space around each call that claims or frees an address turns
// that into one read, two creates and one index write.
//
// The lock is an advisory flock(2) on a file in Dir, so the kernel drops it
// when its holder dies (a SIGKILLed ADD never leaves it taken). It is an
// optimisation only: correctness rests on the store (an address record is
// created only if absent), so when the directory cannot be used, or the
// lock is not had within Wait, the call runs without it.
package nodelock

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

// DefaultDir holds the lock files on a node (a tmpfs: locks need not
// outlive a boot). DirEnv overrides it.
const (
	DefaultDir = "/run/plexus/ipam-local"
	DirEnv     = "PLEXUS_IPAM_LOCK_DIR"
)

// DefaultWait bounds how long a call waits for its turn before it runs
// without one. A turn is a few API requests, but a burst of fifty pods on a
// loaded node queues them for tens of seconds, and running unlocked then
// would bring back the races the lock exists to avoid; a stuck holder is
// bounded by its own request timeout (plexus-ipam's 2 minutes) anyway.
const DefaultWait = time.Minute

// Locker hands out the per-space locks of one directory.
type Locker struct {
	Dir string
	// Wait bounds a wait for the lock (0: DefaultWait).
	Wait time.Duration
	// Logf receives notes on calls that ran without the lock (may be nil).
	Logf func(format string, args ...any)
}

// FromEnv returns the node's Locker: Dir from DirEnv, else DefaultDir.
func FromEnv(getenv func(string) string) *Locker {
	dir := getenv(DirEnv)
	if dir == "" {
		dir = DefaultDir
	}
	return &Locker{Dir: dir}
}

// errWaited says the lock was not had within Wait.
var errWaited = errors.New("still taken")

// Lock takes space's lock and returns the function that drops it. It
// returns ctx's error when ctx ends first; any other trouble (no
// directory, a wait longer than Wait) is logged and yields a no-op unlock,
// so that the caller runs unlocked.
func (l *Locker) Lock(ctx context.Context, space string) (unlock func(), err error) {
	f, err := l.take(ctx, space)
	if err == nil {
		return func() { f.Close() }, nil // closing the file drops the flock
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("waiting for the node's lock of space %q: %w: %w", space, store.ErrUnavailable, context.Cause(ctx))
	}
	if l.Logf != nil {
		l.Logf("running without the node's lock of space %q: %v", space, err)
	}
	return func() {}, nil
}

func (l *Locker) take(ctx context.Context, space string) (*os.File, error) {
	if err := os.MkdirAll(l.Dir, 0o700); err != nil {
		return nil, err
	}
	name := filepath.Join(l.Dir, store.SpaceID(space)+".lock")
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	wait := l.Wait
	if wait <= 0 {
		wait = DefaultWait
	}
	// A blocking flock(2) waits in the kernel, costing no CPU however many
	// wait (polling would: fifty processes of a burst, each waking every
	// few milliseconds). It cannot be interrupted, so it runs aside: when
	// the wait is given up, the lock, if it comes later, is dropped at once.
	got := make(chan error, 1)
	go func() {
		for {
			err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
			if !errors.Is(err, syscall.EINTR) {
				got <- err
				return
			}
		}
	}()
	t := time.NewTimer(wait)
	defer t.Stop()
	var gaveUp error
	select {
	case err := <-got:
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("flock %s: %w", name, err)
		}
		return f, nil
	case <-ctx.Done():
		gaveUp = ctx.Err()
	case <-t.C:
		gaveUp = fmt.Errorf("%s: %w after %s", name, errWaited, wait)
	}
	go func() {
		<-got
		f.Close()
	}()
	return nil, gaveUp
}

// Wrap returns s with every call that claims or frees an address of a
// space made under that space's lock. Reads are not serialised.
func Wrap(s store.Store, l *Locker) store.Store { return &locked{Store: s, l: l} }

type locked struct {
	store.Store
	l *Locker
}

// Unwrap returns the wrapped store (store.ClaimsOf).
func (s *locked) Unwrap() store.Store { return s.Store }

// turn runs f under space's lock.
func turn[T any](ctx context.Context, l *Locker, space string, f func() (T, error)) (T, error) {
	unlock, err := l.Lock(ctx, space)
	if err != nil {
		var zero T
		return zero, err
	}
	defer unlock()
	return f()
}

func (s *locked) Allocate(ctx context.Context, req store.Request) (store.Allocation, error) {
	return turn(ctx, s.l, req.Space, func() (store.Allocation, error) { return s.Store.Allocate(ctx, req) })
}

func (s *locked) Release(ctx context.Context, k store.Key) error {
	_, err := turn(ctx, s.l, k.Space, func() (struct{}, error) { return struct{}{}, s.Store.Release(ctx, k) })
	return err
}

func (s *locked) Free(ctx context.Context, space string, addr netip.Addr) error {
	_, err := turn(ctx, s.l, space, func() (struct{}, error) { return struct{}{}, s.Store.Free(ctx, space, addr) })
	return err
}

func (s *locked) FreeHeld(ctx context.Context, a store.Allocation) error {
	_, err := turn(ctx, s.l, a.Space, func() (struct{}, error) { return struct{}{}, s.Store.FreeHeld(ctx, a) })
	return err
}

func (s *locked) Transfer(ctx context.Context, k store.Key, to store.Holder) (store.Allocation, error) {
	return turn(ctx, s.l, k.Space, func() (store.Allocation, error) { return s.Store.Transfer(ctx, k, to) })
}

// Stats passes on the wrapped store's counters, when it keeps them.
func (s *locked) Stats() store.Stats {
	if st, ok := s.Store.(interface{ Stats() store.Stats }); ok {
		return st.Stats()
	}
	return store.Stats{}
}

// Holders passes on the wrapped store's holder records, when it lists them.
func (s *locked) Holders(ctx context.Context, space string) ([]store.HolderRecord, error) {
	if hl, ok := s.Store.(store.HolderLister); ok {
		return hl.Holders(ctx, space)
	}
	return nil, fmt.Errorf("store %T lists no holder records", s.Store)
}
