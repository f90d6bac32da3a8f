package kubestore

import (
	"context"
	"sync"
	"time"

	"github.com/plexus-cni/plexus/pkg/ipam/alloc"
)

// What one Store knows of a space between its calls. A long-lived client
// (plexusd serving every plexus-ipam request of its node) runs many
// Allocates and Releases of one space at once; without this they would all
// read the same index, race for the same lowest address and write the
// index once each. With it:
//
//   - the index is read once and then kept: every write returns the new
//     object, and the copy is re-read when it is older than viewTTL, when a
//     claim keeps losing races, or when a write finds it outdated;
//   - each claim in flight holds its candidate, and the others pick the
//     next free address instead: a burst of one client takes the lowest
//     free addresses, one each, without losing a race among themselves;
//   - index updates are coalesced: while one write is on its way, the
//     marks that arrive queue up and the next write carries them all.
//
// None of this is needed for correctness, which rests on the IPAllocations
// alone (created only if absent); a stale copy costs a lost create, as a
// stale index always did. A fresh Store (plexus-ipam run as a process) reads
// the index on its first call, as before.

// viewTTL bounds how long a copy of an index serves without a re-read.
const viewTTL = 2 * time.Second

// writeTimeout bounds a coalesced index write; it runs for every waiter,
// so it is not bound by any one caller's context.
const writeTimeout = 10 * time.Second

type spaceState struct {
	mu sync.Mutex
	// base is the index as last read from or written to the API server
	// (nil: none yet, or dropped after a failed write); at is when.
	base *spaceIndex
	at   time.Time
	// view is base's set with the marks not yet written applied.
	view *alloc.Set
	// reading is closed when the read in flight ends (nil: none).
	reading chan struct{}
	// pending counts the claims in flight holding each candidate.
	pending map[alloc.Num]int
	// queue holds the marks waiting for the next write, inflight those of
	// the write under way; writing says a writer is running.
	queue, inflight []*markOp
	writing         bool
}

type markOp struct {
	add, remove []alloc.Num
	done        chan error
}

func (op *markOp) apply(set *alloc.Set) {
	for _, n := range op.add {
		set.Add(n)
	}
	for _, n := range op.remove {
		set.Remove(n)
	}
}

func (s *Store) state(space string) *spaceState {
	s.spacesMu.Lock()
	defer s.spacesMu.Unlock()
	if s.spaces == nil {
		s.spaces = map[string]*spaceState{}
	}
	st := s.spaces[space]
	if st == nil {
		st = &spaceState{pending: map[alloc.Num]int{}}
		s.spaces[space] = st
	}
	return st
}

// localIndex returns the index of space to allocate from: the server's
// object (for its resourceVersion) and this client's view of the set, a
// copy the caller owns. fresh forces a read.
func (s *Store) localIndex(ctx context.Context, space string, fresh bool) (*spaceIndex, error) {
	st := s.state(space)
	for {
		st.mu.Lock()
		if !fresh && st.base != nil && time.Since(st.at) < viewTTL {
			idx := &spaceIndex{obj: st.base.obj, set: st.view.Clone()}
			st.mu.Unlock()
			return idx, nil
		}
		if wait := st.reading; wait != nil {
			st.mu.Unlock()
			select {
			case <-wait:
			case <-ctx.Done():
				return nil, classify(ctx.Err(), "reading ipspace "+spaceName(space))
			}
			fresh = false // that read is as fresh as ours would be
			continue
		}
		done := make(chan struct{})
		st.reading = done
		st.mu.Unlock()
		idx, err := s.readIndex(ctx, space)
		st.mu.Lock()
		st.reading = nil
		close(done)
		if err != nil {
			st.mu.Unlock()
			return nil, err
		}
		st.setBase(idx)
		out := &spaceIndex{obj: idx.obj, set: st.view.Clone()}
		st.mu.Unlock()
		return out, nil
	}
}

// setBase records idx as the server's index (st.mu held) and rebuilds the
// view from it and the marks not yet written.
func (st *spaceState) setBase(idx *spaceIndex) {
	st.base, st.at = idx, time.Now()
	st.view = idx.set.Clone()
	for _, op := range st.inflight {
		op.apply(st.view)
	}
	for _, op := range st.queue {
		op.apply(st.view)
	}
}

// noteIndex records an index this client wrote or rebuilt.
func (s *Store) noteIndex(space string, idx *spaceIndex) {
	if idx == nil || idx.obj == nil || idx.set == nil {
		return
	}
	st := s.state(space)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.setBase(idx)
}

// usedNow returns what a claim may not pick: this client's view of the
// index as it is now, with what the claim found taken (taken) and every
// candidate a claim of this client holds. The view, not the claim's own
// copy (used, which is only taken when the view was dropped), since it has
// the addresses this client's other claims took after that copy was made:
// picking one of those would lose a race to ourselves.
func (s *Store) usedNow(space string, used *alloc.Set, taken []alloc.Num) *alloc.Set {
	st := s.state(space)
	st.mu.Lock()
	defer st.mu.Unlock()
	base := st.view
	if base == nil {
		if len(st.pending) == 0 {
			return used
		}
		base, taken = used, nil // used has what the claim found taken
	}
	out := base.Clone()
	for _, n := range taken {
		out.Add(n)
	}
	for n := range st.pending {
		out.Add(n)
	}
	return out
}

// hold marks n as a candidate of a claim in flight; drop ends that, and
// taken (when set) records n in the view as allocated.
func (s *Store) hold(space string, n alloc.Num) {
	st := s.state(space)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.pending[n]++
}

func (s *Store) drop(space string, n alloc.Num, taken bool) {
	st := s.state(space)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.pending[n]--; st.pending[n] <= 0 {
		delete(st.pending, n)
	}
	if taken && st.view != nil {
		st.view.Add(n)
	}
}

// mark adds and removes addresses in the index of space, coalesced with
// the marks of this client's other calls: the view has them at once, and
// the first caller to find no write under way starts a writer that writes
// the queue, a batch per write, until it is empty. It returns the result
// of the write that carried this mark.
func (s *Store) mark(ctx context.Context, space string, add, remove []alloc.Num) error {
	if len(add) == 0 && len(remove) == 0 {
		return nil
	}
	st := s.state(space)
	op := &markOp{add: add, remove: remove, done: make(chan error, 1)}
	st.mu.Lock()
	if st.view != nil {
		op.apply(st.view)
	}
	st.queue = append(st.queue, op)
	lead := !st.writing
	st.writing = true
	st.mu.Unlock()
	if lead {
		// The writer outlives this call when others' marks keep arriving:
		// each caller waits only for the write that carries its own.
		go s.writeQueued(context.WithoutCancel(ctx), space, st)
	}
	select {
	case err := <-op.done:
		return err
	case <-ctx.Done():
		return classify(ctx.Err(), "writing ipspace "+spaceName(space))
	}
}

// writeQueued writes the queued marks, a batch per write (each bounded by
// writeTimeout), until none is left.
func (s *Store) writeQueued(ctx context.Context, space string, st *spaceState) {
	for {
		st.mu.Lock()
		ops := st.queue
		st.queue = nil
		if len(ops) == 0 {
			st.writing = false
			st.mu.Unlock()
			return
		}
		st.inflight = ops
		var cur *spaceIndex
		if st.base != nil {
			cur = &spaceIndex{obj: st.base.obj, set: st.base.set}
		}
		st.mu.Unlock()
		var add, remove []alloc.Num
		for _, op := range ops {
			add, remove = append(add, op.add...), append(remove, op.remove...)
		}
		wctx, cancel := context.WithTimeout(ctx, writeTimeout)
		written, err := s.markIndex(wctx, space, cur, add, remove)
		cancel()
		st.mu.Lock()
		st.inflight = nil
		if written != nil {
			st.setBase(written)
		} else {
			// Failed, given up after conflicts, or found nothing to change
			// in the server's copy: ours is outdated; re-read next time.
			st.base, st.view = nil, nil
		}
		st.mu.Unlock()
		for _, op := range ops {
			op.done <- err
		}
	}
}
