package kubestore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
	"github.com/plexus-cni/plexus/pkg/ipam/alloc"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

const (
	// refreshEvery re-reads the index after this many lost creates in a
	// row: under contention the winners have marked their addresses.
	refreshEvery = 4
	// maxConflicts bounds lost creates before the index is rebuilt from
	// the IPAllocations (it is then stale, not just contended).
	maxConflicts = 64
)

// claim is the state of one Allocate call.
type claim struct {
	req       store.Request
	key       store.Key
	idx       *spaceIndex
	used      *alloc.Set  // index plus the addresses found taken
	taken     []alloc.Num // found taken: added to the index at the end
	conflicts int
	// bias is the space's contention (store.Heat.Bias): how wide the
	// claim spreads once it lost a race (store.Pick).
	bias int
	// noted is how many of the conflicts went to store.Heat already.
	noted   int
	rebuilt bool
	rnd     *rand.Rand
	att     *v1.IPAttachment
	// prior is the address an existing attachment pointed at: its
	// IPAllocation may be ours from an earlier, interrupted ADD.
	prior netip.Addr
	// old is an address of ours to free once the new one is held (a
	// repeated ADD that requests another address); the attachment names
	// it too until then (v1.AnnotationPreviousAddress).
	old netip.Addr
	// held is the candidate this claim holds against the client's other
	// claims (see local.go); valid while the claim tries it.
	held netip.Addr
}

// Allocate implements store.Store. The attachment always names an
// address before its IPAllocation is created (write-ahead): it is created
// pointing at the first candidate, and moved to each further candidate
// before that one's create. An ADD interrupted at any point therefore
// leaves no IPAllocation its DEL cannot find (docs/ipam.md).
func (s *Store) Allocate(ctx context.Context, req store.Request) (store.Allocation, error) {
	if req.Range == nil && !req.Want.IsValid() {
		return store.Allocation{}, errors.New("allocate: no range and no requested address")
	}
	idx, err := s.localIndex(ctx, req.Space, false)
	if err != nil {
		return store.Allocation{}, err
	}
	c := &claim{req: req, key: req.Key(), idx: idx, used: idx.set, rnd: store.NewRand(), bias: s.heat.Bias(req.Space)}
	defer s.release(c, false)
	defer s.noteLosses(c) // a failed claim's; a successful one's go with its index write
	cand, err := s.pick(ctx, c)
	if err != nil {
		return store.Allocation{}, err
	}
	if done, a, err := s.startAttachment(ctx, c, cand); err != nil || done {
		return a, err
	}
	a, err := s.claimLoop(ctx, c, cand)
	if err != nil {
		return store.Allocation{}, err
	}
	var remove []alloc.Num
	if c.old.IsValid() {
		if free, err := s.freeOwned(ctx, c.key, c.old); free {
			remove = append(remove, alloc.NumOf(c.old))
		} else if err != nil {
			s.logf("freeing %s, held before by %s/%s: %v", c.old, c.key.ContainerID, c.key.IfName, err)
		}
	}
	// The address is held either way: an index that misses it costs the
	// next allocator that picks it one failed create.
	s.noteLosses(c)
	_ = s.mark(ctx, req.Space, append(c.taken, alloc.NumOf(a.Address)), remove)
	return a, nil
}

// noteLosses records the races c lost (once) for store.Heat.
func (s *Store) noteLosses(c *claim) {
	s.heat.Lost(c.req.Space, c.conflicts-c.noted)
	c.noted = c.conflicts
}

// release ends the claim's hold on its candidate; taken says another
// holder has it.
func (s *Store) release(c *claim, taken bool) {
	if c.held.IsValid() {
		s.drop(c.req.Space, alloc.NumOf(c.held), taken)
		c.held = netip.Addr{}
	}
}

// pick returns the requested address or the next candidate, rebuilding
// the index from the truth when it is exhausted or badly stale.
func (s *Store) pick(ctx context.Context, c *claim) (netip.Addr, error) {
	if c.req.Want.IsValid() {
		return c.req.Want, nil
	}
	for {
		if c.conflicts >= maxConflicts && !c.rebuilt {
			if err := s.refresh(ctx, c, true); err != nil {
				return netip.Addr{}, err
			}
		}
		if a, ok := store.Pick(c.req.Range, s.usedNow(c.req.Space, c.used, c.taken), c.conflicts, c.bias, s.slot, c.rnd); ok {
			s.release(c, false)
			s.hold(c.req.Space, alloc.NumOf(a))
			c.held = a
			return a, nil
		}
		if c.rebuilt {
			return netip.Addr{}, fmt.Errorf("range %s-%s: %w", c.req.Range.First, c.req.Range.Last, store.ErrExhausted)
		}
		if err := s.refresh(ctx, c, true); err != nil {
			return netip.Addr{}, err
		}
	}
}

// refresh re-reads the index (or rebuilds it from the IPAllocations) and
// merges what this call found taken.
func (s *Store) refresh(ctx context.Context, c *claim, rebuild bool) error {
	var idx *spaceIndex
	var err error
	if rebuild {
		idx, err = s.rebuild(ctx, c.req.Space)
		c.rebuilt = true
	} else {
		idx, err = s.localIndex(ctx, c.req.Space, true)
	}
	if err != nil {
		return err
	}
	c.idx, c.used = idx, idx.set.Clone()
	for _, n := range c.taken {
		c.used.Add(n)
	}
	return nil
}

// startAttachment creates the holder's IPAttachment pointing at cand. If
// it exists, it returns done with the allocation it names when that is
// ours and satisfies the request; otherwise claimLoop moves it.
func (s *Store) startAttachment(ctx context.Context, c *claim, cand netip.Addr) (bool, store.Allocation, error) {
	out := &v1.IPAttachment{}
	err := s.create(ctx, v1.ResourceIPAttachments, toAttachmentObject(c.key, c.req.Holder, cand, netip.Addr{}), out)
	if err == nil {
		c.att = out
		return false, store.Allocation{}, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return false, store.Allocation{}, classify(err, "creating ipattachment")
	}
	if err := s.get(ctx, v1.ResourceIPAttachments, attachmentName(c.key), out); err != nil {
		return false, store.Allocation{}, classify(err, "reading ipattachment")
	}
	c.att = out
	names := attachmentAddrs(out)
	for _, held := range names {
		if a, ok := s.owned(ctx, c.key, held); ok {
			if !c.req.Want.IsValid() || c.req.Want == held {
				return true, a, nil
			}
			c.old = held
			break
		}
	}
	if len(names) > 0 {
		c.prior = names[0]
	}
	return false, store.Allocation{}, nil
}

// nameCandidate makes the attachment name cand (and c.old, the address a
// repeated ADD moves away from) before cand's IPAllocation is created.
func (s *Store) nameCandidate(ctx context.Context, c *claim, cand netip.Addr) error {
	if c.att.Spec.Address == cand.String() && (!c.old.IsValid() || c.att.Annotations[v1.AnnotationPreviousAddress] == c.old.String()) {
		return nil
	}
	return s.pointAttachment(ctx, c, cand)
}

// pointAttachment updates the holder's IPAttachment to addr. An attachment
// deleted meanwhile means that a DEL of this key ran: the ADD fails
// rather than bring it back.
func (s *Store) pointAttachment(ctx context.Context, c *claim, addr netip.Addr) error {
	for attempt := 0; ; attempt++ {
		obj := toAttachmentObject(c.key, c.req.Holder, addr, c.old)
		obj.ResourceVersion = c.att.ResourceVersion
		out := &v1.IPAttachment{}
		err := s.update(ctx, v1.ResourceIPAttachments, obj.Name, obj, out)
		if err == nil {
			c.att = out
			return nil
		}
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("ipattachment %s deleted during the ADD (a DEL of container %s ifname %s ran): %w", obj.Name, c.key.ContainerID, c.key.IfName, store.ErrUnavailable)
		}
		if !apierrors.IsConflict(err) || attempt >= 3 {
			return classify(err, "updating ipattachment")
		}
		// Someone else touched it (a repeated ADD of this key): start over from it.
		if err := s.get(ctx, v1.ResourceIPAttachments, attachmentName(c.key), c.att); err != nil {
			return classify(err, "reading ipattachment")
		}
	}
}

// owned returns the IPAllocation of addr when k holds it.
func (s *Store) owned(ctx context.Context, k store.Key, addr netip.Addr) (store.Allocation, bool) {
	obj, err := s.getAllocation(ctx, k.Space, addr)
	if err != nil || obj == nil {
		return store.Allocation{}, false
	}
	a, err := fromAllocationObject(obj)
	return a, err == nil && a.Owns(k) && a.Space == k.Space
}

// getAllocation reads the IPAllocation of addr (nil, nil when absent).
func (s *Store) getAllocation(ctx context.Context, space string, addr netip.Addr) (*v1.IPAllocation, error) {
	obj := &v1.IPAllocation{}
	err := s.get(ctx, v1.ResourceIPAllocations, allocationName(space, addr), obj)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, classify(err, "reading ipallocation")
	}
	return obj, nil
}
