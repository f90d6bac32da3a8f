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

// Lookup implements store.Store.
func (s *Store) Lookup(ctx context.Context, k store.Key) (store.Allocation, error) {
	sn, err := s.read(ctx, k)
	if err != nil {
		return store.Allocation{}, err
	}
	if !sn.owned() {
		return store.Allocation{}, fmt.Errorf("container %s ifname %s: %w", k.ContainerID, k.IfName, store.ErrNotFound)
	}
	return sn.alloc, nil
}

// Release implements store.Store: one transaction deletes the holder key
// and, when the holder holds it, the allocation, and updates the index.
func (s *Store) Release(ctx context.Context, k store.Key) error {
	rnd := store.NewRand()
	for attempt := 0; attempt < maxTxnAttempts; attempt++ {
		sn, err := s.read(ctx, k)
		if err != nil || sn.holderRev == 0 {
			return err
		}
		cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(s.holderKey(k)), "=", sn.holderRev)}
		ops := []clientv3.Op{clientv3.OpDelete(s.holderKey(k))}
		if sn.owned() {
			more, mops, err := s.unclaim(k.Space, sn.held, sn.allocRev, sn.indexRev, sn.index)
			if err != nil {
				return err
			}
			cmps, ops = append(cmps, more...), append(ops, mops...)
		}
		if ok, err := s.commit(ctx, cmps, ops); ok || err != nil {
			return err
		}
		if err := s.backoff.Wait(ctx, min(attempt, 6), rnd); err != nil {
			return err
		}
	}
	return fmt.Errorf("release in %q: %w: no transaction committed", k.Space, store.ErrUnavailable)
}

// unclaim returns the comparisons and operations that delete the
// allocation of addr and drop it from the index.
func (s *Store) unclaim(space string, addr netip.Addr, allocRev, indexRev int64, index *alloc.Set) ([]clientv3.Cmp, []clientv3.Op, error) {
	next := index.Clone()
	next.Remove(alloc.NumOf(addr))
	idx, err := encodeIndex(space, next)
	if err != nil {
		return nil, nil, err
	}
	return []clientv3.Cmp{
			clientv3.Compare(clientv3.ModRevision(s.allocKey(space, addr)), "=", allocRev),
			clientv3.Compare(clientv3.ModRevision(s.indexKey(space)), "=", indexRev),
		}, []clientv3.Op{
			clientv3.OpDelete(s.allocKey(space, addr)),
			clientv3.OpPut(s.indexKey(space), idx),
		}, nil
}

func (s *Store) commit(ctx context.Context, cmps []clientv3.Cmp, ops []clientv3.Op) (bool, error) {
	s.requests.Add(1)
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return false, classify(err, "etcd transaction")
	}
	if !resp.Succeeded {
		s.indexConflicts.Add(1)
	}
	return resp.Succeeded, nil
}

// Free implements store.Store.
func (s *Store) Free(ctx context.Context, space string, addr netip.Addr) error {
	rnd := store.NewRand()
	for attempt := 0; attempt < maxTxnAttempts; attempt++ {
		ok, err := s.freeOnce(ctx, space, addr)
		if ok || err != nil {
			return err
		}
		if err := s.backoff.Wait(ctx, min(attempt, 6), rnd); err != nil {
			return err
		}
	}
	return fmt.Errorf("free %s in %q: %w: no transaction committed", addr, space, store.ErrUnavailable)
}

// FreeHeld implements store.Store.
func (s *Store) FreeHeld(ctx context.Context, a store.Allocation) error {
	rnd := store.NewRand()
	k := a.Key()
	for attempt := 0; attempt < maxTxnAttempts; attempt++ {
		ok, err := s.freeOnceIf(ctx, a.Space, a.Address, &k)
		if ok || err != nil {
			return err
		}
		if err := s.backoff.Wait(ctx, min(attempt, 6), rnd); err != nil {
			return err
		}
	}
	return fmt.Errorf("free %s in %q: %w: no transaction committed", a.Address, a.Space, store.ErrUnavailable)
}

func (s *Store) freeOnce(ctx context.Context, space string, addr netip.Addr) (bool, error) {
	return s.freeOnceIf(ctx, space, addr, nil)
}

// freeOnceIf runs one transaction freeing addr, if held by *only when only
// is not nil; it reports whether it is done (freed, or nothing to free).
func (s *Store) freeOnceIf(ctx context.Context, space string, addr netip.Addr, only *store.Key) (bool, error) {
	s.requests.Add(1)
	resp, err := s.cli.Txn(ctx).Then(clientv3.OpGet(s.allocKey(space, addr)), clientv3.OpGet(s.indexKey(space))).Commit()
	if err != nil {
		return false, classify(err, "reading allocation")
	}
	sn := &snapshot{}
	if err := sn.setIndex(resp.Responses[1].GetResponseRange()); err != nil {
		return false, err
	}
	if err := sn.setAlloc(resp.Responses[0].GetResponseRange()); err != nil {
		return false, err
	}
	if sn.allocRev == 0 || only != nil && !sn.alloc.Owns(*only) {
		return true, nil
	}
	k := sn.alloc.Key()
	cmps, ops, err := s.unclaim(space, addr, sn.allocRev, sn.indexRev, sn.index)
	if err != nil {
		return false, err
	}
	s.requests.Add(1)
	h, err := s.cli.Get(ctx, s.holderKey(k))
	if err != nil {
		return false, classify(err, "reading holder")
	}
	hs := &snapshot{}
	if err := hs.setHolder((*etcdRange)(h)); err != nil {
		return false, err
	}
	if hs.held == addr {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(s.holderKey(k)), "=", hs.holderRev))
		ops = append(ops, clientv3.OpDelete(s.holderKey(k)))
	}
	return s.commit(ctx, cmps, ops)
}

// rangeAll calls each for every key-value under prefix, in pages.
func (s *Store) rangeAll(ctx context.Context, prefix string, each func(v []byte) error) error {
	end := clientv3.GetPrefixRangeEnd(prefix)
	key := prefix
	for {
		s.requests.Add(1)
		resp, err := s.cli.Get(ctx, key, clientv3.WithRange(end), clientv3.WithLimit(2000))
		if err != nil {
			return classify(err, "listing "+prefix)
		}
		for _, kv := range resp.Kvs {
			if err := each(kv.Value); err != nil {
				return err
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return nil
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, f store.Filter) ([]store.Allocation, error) {
	var out []store.Allocation
	err := s.rangeAll(ctx, s.allocPrefix(f.Space), func(v []byte) error {
		a, err := decodeAlloc(v)
		if err == nil && f.Match(a) {
			out = append(out, a)
		}
		return err
	})
	return out, err
}

// Spaces implements store.Store.
func (s *Store) Spaces(ctx context.Context) ([]store.SpaceInfo, error) {
	var out []store.SpaceInfo
	err := s.rangeAll(ctx, s.prefix+"index/", func(v []byte) error {
		var rec indexRecord
		var set alloc.Set
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("index record: %w", err)
		}
		if err := set.UnmarshalBinary(rec.Index); err != nil {
			return fmt.Errorf("index record of %q: %w", rec.Space, err)
		}
		out = append(out, store.SpaceInfo{Space: rec.Space, Allocated: set.Count(), Runs: len(set.Runs()), IndexBytes: len(rec.Index)})
		return nil
	})
	return out, err
}

// RebuildIndex implements store.Store. Every allocation change also
// writes the index, so the write is guarded by the index's revision alone.
func (s *Store) RebuildIndex(ctx context.Context, space string) error {
	rnd := store.NewRand()
	for attempt := 0; attempt < maxTxnAttempts; attempt++ {
		s.requests.Add(1)
		cur, err := s.cli.Get(ctx, s.indexKey(space))
		if err != nil {
			return classify(err, "reading index")
		}
		var rev int64
		if len(cur.Kvs) > 0 {
			rev = cur.Kvs[0].ModRevision
		}
		allocs, err := s.List(ctx, store.Filter{Space: space})
		if err != nil {
			return err
		}
		idx, err := encodeIndex(space, store.IndexOf(allocs))
		if err != nil {
			return err
		}
		cmp := clientv3.Compare(clientv3.ModRevision(s.indexKey(space)), "=", rev)
		if ok, err := s.commit(ctx, []clientv3.Cmp{cmp}, []clientv3.Op{clientv3.OpPut(s.indexKey(space), idx)}); ok || err != nil {
			return err
		}
		if err := s.backoff.Wait(ctx, min(attempt, 6), rnd); err != nil {
			return err
		}
	}
	return fmt.Errorf("rebuild index of %q: %w: no transaction committed", space, store.ErrUnavailable)
}

// Holders implements store.HolderLister.
func (s *Store) Holders(ctx context.Context, space string) ([]store.HolderRecord, error) {
	var out []store.HolderRecord
	err := s.rangeAll(ctx, s.prefix+"holder/"+store.SpaceID(space)+"/", func(v []byte) error {
		var h holderRecord
		if err := json.Unmarshal(v, &h); err != nil {
			return fmt.Errorf("holder record: %w", err)
		}
		addr, _ := netip.ParseAddr(h.Address)
		out = append(out, store.HolderRecord{Key: store.Key{Space: h.Space, ContainerID: h.ContainerID, IfName: h.IfName, Slot: h.Slot}, Address: addr})
		return nil
	})
	return out, err
}
