package kubestore

import (
	"context"
	"net/netip"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
	"github.com/plexus-cni/plexus/pkg/ipam/alloc"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

const (
	// maxRebuildAttempts bounds the resourceVersion retries of a rebuild.
	maxRebuildAttempts = 10
	// markAttempts bounds the writes of one index update. The index is a
	// hint: an update that keeps losing races is dropped, and the next
	// allocator that finds the address taken records it.
	markAttempts = 2
)

// spaceIndex is a read IPSpace (obj nil: it does not exist) and its set
// (nil when it does not decode).
type spaceIndex struct {
	obj *v1.IPSpace
	set *alloc.Set
}

// readIndex reads a space's index. A missing one is created from the
// IPAllocations (empty on first use); an undecodable one is rebuilt.
func (s *Store) readIndex(ctx context.Context, space string) (*spaceIndex, error) {
	idx, err := s.fetchIndex(ctx, space)
	if err != nil {
		return nil, err
	}
	if idx.obj == nil {
		return s.createIndex(ctx, space)
	}
	if idx.set == nil {
		return s.rebuild(ctx, space)
	}
	return idx, nil
}

// createIndex creates the IPSpace from the IPAllocations (none on first
// use); when another allocator created it first, it reads theirs.
func (s *Store) createIndex(ctx context.Context, space string) (*spaceIndex, error) {
	allocs, err := s.List(ctx, store.Filter{Space: space})
	if err != nil {
		return nil, err
	}
	idx, err := s.putIndex(ctx, space, nil, store.IndexOf(allocs))
	if apierrors.IsAlreadyExists(err) {
		if idx, err = s.fetchIndex(ctx, space); err == nil && idx.set == nil {
			return s.rebuild(ctx, space)
		}
	}
	return idx, classify(err, "creating ipspace "+spaceName(space))
}

func (s *Store) fetchIndex(ctx context.Context, space string) (*spaceIndex, error) {
	obj := &v1.IPSpace{}
	err := s.get(ctx, v1.ResourceIPSpaces, spaceName(space), obj)
	if apierrors.IsNotFound(err) {
		return &spaceIndex{}, nil
	}
	if err != nil {
		return nil, classify(err, "reading ipspace "+spaceName(space))
	}
	s.heat.Observe(space, obj.Annotations[v1.AnnotationContention])
	set := &alloc.Set{}
	if err := set.UnmarshalBinary(obj.Spec.Index); err != nil {
		s.logf("ipspace %s: %v; rebuilding it", obj.Name, err)
		return &spaceIndex{obj: obj}, nil
	}
	return &spaceIndex{obj: obj, set: set}, nil
}

// rebuild recomputes the index of space from its IPAllocations and writes
// it (creating the IPSpace if needed). When another allocator writes it
// first, theirs is taken if it is at least as new as the list. Allocations
// made meanwhile may be missing: the index then says "free" for a taken
// address, which the next allocator finds out by a failed create.
func (s *Store) rebuild(ctx context.Context, space string) (*spaceIndex, error) {
	rnd := store.NewRand()
	for attempt := 0; ; attempt++ {
		cur, err := s.fetchIndex(ctx, space)
		if err != nil {
			return nil, err
		}
		allocs, err := s.List(ctx, store.Filter{Space: space})
		if err != nil {
			return nil, err
		}
		written, err := s.putIndex(ctx, space, cur.obj, store.IndexOf(allocs))
		if err == nil {
			s.noteIndex(space, written)
			return written, nil
		}
		if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) || attempt+1 >= maxRebuildAttempts {
			return nil, classify(err, "writing ipspace "+spaceName(space))
		}
		s.indexConflicts.Add(1)
		if err := s.backoff.Wait(ctx, attempt, rnd); err != nil {
			return nil, err
		}
	}
}

// putIndex creates (old nil) or replaces the IPSpace with set, guarded by
// old's resourceVersion. It carries old's contention level plus this
// client's lost races not yet written (store.Heat).
func (s *Store) putIndex(ctx context.Context, space string, old *v1.IPSpace, set *alloc.Set) (*spaceIndex, error) {
	b, _ := set.MarshalBinary()
	if len(b) > store.MaxIndexBytes {
		s.logf("ipspace %s: index of %d runs needs %d bytes, over the %d-byte cap; written empty", spaceName(space), len(set.Runs()), len(b), store.MaxIndexBytes)
		set = &alloc.Set{}
		b, _ = set.MarshalBinary()
	}
	obj := &v1.IPSpace{
		ObjectMeta: metav1.ObjectMeta{Name: spaceName(space), Labels: map[string]string{v1.LabelSpace: store.SpaceID(space)}},
		Spec:       v1.IPSpaceSpec{Space: space, Index: b, Allocated: int64(set.Count())},
	}
	var base string
	if old != nil {
		base = old.Annotations[v1.AnnotationContention]
	}
	heat, own := s.heat.Export(space, base)
	if heat != "" {
		obj.Annotations = map[string]string{v1.AnnotationContention: heat}
	}
	out := &v1.IPSpace{}
	var err error
	if old == nil {
		err = s.create(ctx, v1.ResourceIPSpaces, obj, out)
	} else {
		obj.ResourceVersion = old.ResourceVersion
		err = s.update(ctx, v1.ResourceIPSpaces, obj.Name, obj, out)
	}
	if err != nil {
		return nil, err
	}
	s.heat.Exported(space, own)
	s.heat.Observe(space, heat)
	return &spaceIndex{obj: out, set: set}, nil
}

// markIndex adds and removes addresses in the index, starting from cur
// (nil: read it), and returns the index it wrote (nil when nothing changed
// or it gave up). It is best effort (see markAttempts): the IPAllocations
// decide, so a write that keeps losing races is dropped and only logged.
// Other failures (the API server unreachable) are logged and returned:
// Release then keeps the attachment, so that the retried DEL unmarks the
// address. Callers go through mark, which coalesces concurrent updates.
func (s *Store) markIndex(ctx context.Context, space string, cur *spaceIndex, add, remove []alloc.Num) (*spaceIndex, error) {
	for attempt := 0; attempt < markAttempts; attempt++ {
		fetched := false
		if cur == nil || cur.obj == nil || cur.set == nil {
			var err error
			if cur, err = s.fetchIndex(ctx, space); err != nil || cur.obj == nil || cur.set == nil {
				s.logf("ipspace %s: index not updated (%v)", spaceName(space), err)
				return nil, err
			}
			fetched = true
		}
		next, changed := cur.set.Clone(), false
		for _, n := range add {
			changed = next.Add(n) || changed
		}
		for _, n := range remove {
			changed = next.Remove(n) || changed
		}
		if !changed && fetched {
			return nil, nil
		}
		if !changed {
			// A copy kept from earlier may be outdated (another client
			// marked the address since): only the server's says so.
			cur, attempt = nil, attempt-1
			continue
		}
		written, err := s.putIndex(ctx, space, cur.obj, next)
		if err == nil {
			return written, nil
		}
		if !apierrors.IsConflict(err) {
			s.logf("ipspace %s: index not updated (%v)", spaceName(space), err)
			return nil, classify(err, "writing ipspace "+spaceName(space))
		}
		s.indexConflicts.Add(1)
		cur = nil
	}
	return nil, nil
}

// FillIndex marks [first, last] allocated in the index of space without
// creating IPAllocations, so that a load test can present a nearly full
// pool without writing tens of thousands of objects. The marks are a hint
// like any other: RebuildIndex drops them, Free of one of them unmarks it.
func (s *Store) FillIndex(ctx context.Context, space string, first, last netip.Addr) error {
	idx, err := s.readIndex(ctx, space)
	if err != nil {
		return err
	}
	set := idx.set.Clone()
	set.AddRun(alloc.NumOf(first), alloc.NumOf(last))
	written, err := s.putIndex(ctx, space, idx.obj, set)
	s.noteIndex(space, written)
	return classify(err, "writing ipspace "+spaceName(space))
}

// RebuildIndex implements store.Store.
func (s *Store) RebuildIndex(ctx context.Context, space string) error {
	_, err := s.rebuild(ctx, space)
	return err
}

// Spaces implements store.Store.
func (s *Store) Spaces(ctx context.Context) ([]store.SpaceInfo, error) {
	var out []store.SpaceInfo
	err := s.list(ctx, v1.ResourceIPSpaces, "", func() runtime.Object { return &v1.IPSpaceList{} }, func(o runtime.Object) error {
		for _, it := range o.(*v1.IPSpaceList).Items {
			var set alloc.Set
			if err := set.UnmarshalBinary(it.Spec.Index); err != nil {
				s.logf("ipspace %s: %v", it.Name, err)
			}
			out = append(out, store.SpaceInfo{Space: it.Spec.Space, Allocated: set.Count(), Runs: len(set.Runs()), IndexBytes: len(it.Spec.Index)})
		}
		return nil
	})
	if err != nil {
		return nil, classify(err, "listing ipspaces")
	}
	return out, nil
}
