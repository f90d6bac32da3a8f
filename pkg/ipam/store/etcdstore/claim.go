package etcdstore

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/plexus-cni/plexus/pkg/ipam/alloc"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

// tryClaim runs the claim transaction for cand: create the allocation if
// absent and point the holder at it if the holder is unchanged, and, in
// the same transaction, update the index if it is unchanged too (a nested
// transaction). A concurrent allocation in the space thus never fails the
// claim; it only makes the index update a separate step (markIndex). On
// failure it updates sn and c from what the transaction read instead.
func (s *Store) tryClaim(ctx context.Context, sn *snapshot, c *claim, cand netip.Addr) (bool, store.Allocation, error) {
	k := sn.key
	a := store.Allocation{Space: k.Space, Slot: k.Slot, Address: cand, Holder: c.req.Holder}
	add := append(runsOf(c.taken), alloc.NumOf(cand))
	var remove []alloc.Num
	cmps := []clientv3.Cmp{
		clientv3.Compare(clientv3.CreateRevision(s.allocKey(k.Space, cand)), "=", 0),
		clientv3.Compare(clientv3.ModRevision(s.holderKey(k)), "=", sn.holderRev),
	}
	ops := []clientv3.Op{clientv3.OpPut(s.allocKey(k.Space, cand), encodeAlloc(a)), clientv3.OpPut(s.holderKey(k), encodeHolder(k, cand))}
	if sn.owned() { // a repeated ADD asking for another address: drop the old one
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(s.allocKey(k.Space, sn.held)), "=", sn.allocRev))
		ops = append(ops, clientv3.OpDelete(s.allocKey(k.Space, sn.held)))
		remove = append(remove, alloc.NumOf(sn.held))
	}
	idxOp, err := s.indexTxn(k.Space, sn.indexRev, sn.index, add, remove)
	if err != nil {
		return false, store.Allocation{}, err
	}
	s.requests.Add(1)
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(append(ops, idxOp)...).Else(
		clientv3.OpGet(s.allocKey(k.Space, cand)), clientv3.OpGet(s.holderKey(k))).Commit()
	if err != nil {
		return false, store.Allocation{}, classify(err, "claim transaction")
	}
	if resp.Succeeded {
		if !resp.Responses[len(resp.Responses)-1].GetResponseTxn().Succeeded {
			s.markIndex(ctx, k.Space, add, remove)
		}
		return true, a, nil
	}
	if err := sn.setHolder(resp.Responses[1].GetResponseRange()); err != nil {
		return false, store.Allocation{}, err
	}
	if err := s.learnCandidate(resp.Responses[0].GetResponseRange(), k, c, cand); err != nil {
		return false, store.Allocation{}, err
	}
	if c.conflicts%refreshEvery == 0 || sn.held.IsValid() {
		fresh, err := s.read(ctx, k)
		if err != nil {
			return false, store.Allocation{}, err
		}
		*sn = *fresh
	}
	return false, store.Allocation{}, nil
}

// refreshEvery re-reads the index after this many lost claims in a row.
const refreshEvery = 4

// indexTxn returns a nested transaction that writes index plus add minus
// remove if the index key is still at rev.
func (s *Store) indexTxn(space string, rev int64, index *alloc.Set, add, remove []alloc.Num) (clientv3.Op, error) {
	next := index.Clone()
	for _, n := range add {
		next.Add(n)
	}
	for _, n := range remove {
		next.Remove(n)
	}
	v, err := encodeIndex(space, next)
	if err != nil {
		return clientv3.Op{}, err
	}
	return clientv3.OpTxn([]clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(s.indexKey(space)), "=", rev)},
		[]clientv3.Op{clientv3.OpPut(s.indexKey(space), v)}, nil), nil
}

// markIndexAttempts bounds the follow-up index updates of one call.
const markIndexAttempts = 3

// markIndex adds and removes addresses in the index with revision-checked
// writes, best effort: an address it fails to add is found taken (and
// recorded) by the next allocator that picks it.
func (s *Store) markIndex(ctx context.Context, space string, add, remove []alloc.Num) {
	for attempt := 0; attempt < markIndexAttempts; attempt++ {
		s.requests.Add(1)
		cur, err := s.cli.Get(ctx, s.indexKey(space))
		if err != nil {
			return
		}
		sn := &snapshot{}
		if sn.setIndex((*etcdRange)(cur)) != nil {
			return
		}
		op, err := s.indexTxn(space, sn.indexRev, sn.index, add, remove)
		if err != nil {
			return
		}
		s.requests.Add(1)
		resp, err := s.cli.Txn(ctx).Then(op).Commit()
		if err != nil || resp.Responses[0].GetResponseTxn().Succeeded {
			return
		}
		s.indexConflicts.Add(1)
	}
}

func runsOf(set *alloc.Set) []alloc.Num {
	var out []alloc.Num
	for _, r := range set.Runs() {
		for n := r.Lo; ; {
			out = append(out, n)
			if n == r.Hi {
				break
			}
			n, _ = n.Next()
		}
	}
	return out
}

// learnCandidate records why a claim of cand lost: cand is held (taken,
// or in use when requested), or only the holder or index changed.
func (s *Store) learnCandidate(r *etcdRange, k store.Key, c *claim, cand netip.Addr) error {
	if r == nil || len(r.Kvs) == 0 {
		return nil // the holder changed (a concurrent ADD of the same key)
	}
	other, err := decodeAlloc(r.Kvs[0].Value)
	if err != nil {
		return err
	}
	if other.Owns(k) {
		return nil
	}
	if c.req.Want.IsValid() {
		return fmt.Errorf("requested address %s: %w (pod %s/%s, container %s, ifname %s)", cand, store.ErrInUse,
			other.PodNamespace, other.PodName, other.ContainerID, other.IfName)
	}
	c.taken.Add(alloc.NumOf(cand))
	c.conflicts++
	s.claimConflicts.Add(1)
	return nil
}

// encodeIndex encodes an index value; it refuses one over the size cap.
func encodeIndex(space string, set *alloc.Set) (string, error) {
	b, _ := set.MarshalBinary()
	if len(b) > store.MaxIndexBytes {
		return "", fmt.Errorf("index of %q: %d runs need %d bytes, over the %d-byte cap (see docs/ipam.md)", space, len(set.Runs()), len(b), store.MaxIndexBytes)
	}
	v, _ := json.Marshal(indexRecord{Space: space, Index: b})
	return string(v), nil
}
