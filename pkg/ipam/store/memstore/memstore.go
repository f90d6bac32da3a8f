// Package memstore is an in-memory store.Store: the reference semantics
// the shared suite is checked against, and the fake the plugin's unit tests
// use. It serves one process only.
package memstore

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"sync"

	"github.com/plexus-cni/plexus/pkg/ipam/alloc"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

// Store keeps allocations in maps.
type Store struct {
	mu      sync.Mutex // guards all following fields
	holders map[store.Key]netip.Addr
	allocs  map[string]map[netip.Addr]store.Allocation // by space
	index   map[string]*alloc.Set
	// down makes every call fail with store.ErrUnavailable (SetDown).
	down bool
}

var _ store.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{holders: map[store.Key]netip.Addr{}, allocs: map[string]map[netip.Addr]store.Allocation{}, index: map[string]*alloc.Set{}}
}

// SetDown makes the store unreachable (true) or reachable again.
func (s *Store) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// check fails a call while the store is down or once ctx has ended, as a
// remote store's call would.
func (s *Store) check(ctx context.Context) error {
	if s.down {
		return fmt.Errorf("memstore: %w", store.ErrUnavailable)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("memstore: %w: %w", store.ErrUnavailable, context.Cause(ctx))
	}
	return nil
}

// Allocate implements store.Store.
func (s *Store) Allocate(ctx context.Context, req store.Request) (store.Allocation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return store.Allocation{}, err
	}
	k := req.Key()
	if a, ok := s.holders[k]; ok {
		if cur, ok := s.allocs[k.Space][a]; ok && cur.Owns(k) && (!req.Want.IsValid() || req.Want == a) {
			return cur, nil
		}
	}
	addr := req.Want
	if addr.IsValid() {
		if cur, ok := s.allocs[k.Space][addr]; ok && !cur.Owns(k) {
			return store.Allocation{}, fmt.Errorf("requested address %s: %w (container %s, ifname %s)", addr, store.ErrInUse, cur.ContainerID, cur.IfName)
		}
	}
	s.releaseLocked(k)
	if !addr.IsValid() {
		n, ok := req.Range.Next(s.indexLocked(k.Space), alloc.Num{})
		if !ok {
			return store.Allocation{}, fmt.Errorf("range %s-%s: %w", req.Range.First, req.Range.Last, store.ErrExhausted)
		}
		addr = n.Addr()
	}
	a := store.Allocation{Space: k.Space, Slot: k.Slot, Address: addr, Holder: req.Holder}
	s.putLocked(a)
	return a, nil
}

func (s *Store) indexLocked(space string) *alloc.Set {
	if s.index[space] == nil {
		s.index[space] = &alloc.Set{}
	}
	return s.index[space]
}

func (s *Store) putLocked(a store.Allocation) {
	if s.allocs[a.Space] == nil {
		s.allocs[a.Space] = map[netip.Addr]store.Allocation{}
	}
	s.allocs[a.Space][a.Address] = a
	s.holders[a.Key()] = a.Address
	s.indexLocked(a.Space).Add(alloc.NumOf(a.Address))
}

func (s *Store) releaseLocked(k store.Key) {
	addr, ok := s.holders[k]
	if !ok {
		return
	}
	delete(s.holders, k)
	if cur, ok := s.allocs[k.Space][addr]; ok && cur.Owns(k) {
		delete(s.allocs[k.Space], addr)
		s.indexLocked(k.Space).Remove(alloc.NumOf(addr))
	}
}

// Lookup implements store.Store.
func (s *Store) Lookup(ctx context.Context, k store.Key) (store.Allocation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return store.Allocation{}, err
	}
	if a, ok := s.holders[k]; ok {
		if cur, ok := s.allocs[k.Space][a]; ok && cur.Owns(k) {
			return cur, nil
		}
	}
	return store.Allocation{}, fmt.Errorf("container %s ifname %s: %w", k.ContainerID, k.IfName, store.ErrNotFound)
}

// Release implements store.Store.
func (s *Store) Release(ctx context.Context, k store.Key) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	s.releaseLocked(k)
	return nil
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, f store.Filter) ([]store.Allocation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var out []store.Allocation
	for _, m := range s.allocs {
		for _, a := range m {
			if f.Match(a) {
				out = append(out, a)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address.Less(out[j].Address) })
	return out, nil
}

// Free implements store.Store.
func (s *Store) Free(ctx context.Context, space string, addr netip.Addr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	if cur, ok := s.allocs[space][addr]; ok {
		s.releaseLocked(cur.Key())
	}
	return nil
}

// FreeHeld implements store.Store.
func (s *Store) FreeHeld(ctx context.Context, a store.Allocation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	if cur, ok := s.allocs[a.Space][a.Address]; ok && cur.Owns(a.Key()) {
		s.releaseLocked(cur.Key())
	}
	return nil
}

// Spaces implements store.Store.
func (s *Store) Spaces(ctx context.Context) ([]store.SpaceInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	var out []store.SpaceInfo
	for space, idx := range s.index {
		b, _ := idx.MarshalBinary()
		out = append(out, store.SpaceInfo{Space: space, Allocated: idx.Count(), Runs: len(idx.Runs()), IndexBytes: len(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Space < out[j].Space })
	return out, nil
}

// RebuildIndex implements store.Store.
func (s *Store) RebuildIndex(ctx context.Context, space string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	idx := &alloc.Set{}
	for a := range s.allocs[space] {
		idx.Add(alloc.NumOf(a))
	}
	s.index[space] = idx
	return nil
}

// Transfer implements store.Store.
func (s *Store) Transfer(ctx context.Context, k store.Key, to store.Holder) (store.Allocation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return store.Allocation{}, err
	}
	addr, ok := s.holders[k]
	cur, held := s.allocs[k.Space][addr]
	if !ok || !held || !cur.Owns(k) {
		return store.Allocation{}, fmt.Errorf("transfer from container %s ifname %s: %w", k.ContainerID, k.IfName, store.ErrNotFound)
	}
	nk := store.Key{Space: k.Space, ContainerID: to.ContainerID, IfName: to.IfName, Slot: k.Slot}
	if other, ok := s.holders[nk]; ok && nk != k {
		if a, ok := s.allocs[k.Space][other]; ok && a.Owns(nk) {
			return store.Allocation{}, fmt.Errorf("transfer to container %s ifname %s: holds %s: %w", nk.ContainerID, nk.IfName, other, store.ErrInUse)
		}
	}
	delete(s.holders, k)
	cur.Holder = to
	s.putLocked(cur)
	return cur, nil
}

// Import implements store.Store.
func (s *Store) Import(ctx context.Context, allocs []store.Allocation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(ctx); err != nil {
		return err
	}
	for _, a := range allocs {
		if _, ok := s.allocs[a.Space][a.Address]; ok {
			return fmt.Errorf("import %s in %q: %w", a.Address, a.Space, store.ErrInUse)
		}
		s.putLocked(a)
	}
	return nil
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.check(ctx)
}

// Close implements store.Store.
func (s *Store) Close() error { return nil }

// Holders implements store.HolderLister.
func (s *Store) Holders(ctx context.Context, space string) ([]store.HolderRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.HolderRecord
	for k, a := range s.holders {
		if k.Space == space {
			out = append(out, store.HolderRecord{Key: k, Address: a})
		}
	}
	return out, s.check(ctx)
}
