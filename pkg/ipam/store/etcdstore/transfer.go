package etcdstore

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

// Transfer implements store.Store: one transaction rewrites the
// allocation with the new holder, creates (or repoints) the new holder
// key and deletes the old one, guarded by the revisions of all three. The
// index does not change: the address stays allocated.
func (s *Store) Transfer(ctx context.Context, k store.Key, to store.Holder) (store.Allocation, error) {
	nk := store.Key{Space: k.Space, ContainerID: to.ContainerID, IfName: to.IfName, Slot: k.Slot}
	rnd := store.NewRand()
	for attempt := 0; attempt < maxTxnAttempts; attempt++ {
		sn, err := s.read(ctx, k)
		if err != nil {
			return store.Allocation{}, err
		}
		if !sn.owned() {
			return store.Allocation{}, fmt.Errorf("transfer from container %s ifname %s: %w", k.ContainerID, k.IfName, store.ErrNotFound)
		}
		if nk == k {
			return sn.alloc, nil
		}
		dst, err := s.read(ctx, nk)
		if err != nil {
			return store.Allocation{}, err
		}
		if dst.owned() {
			return store.Allocation{}, fmt.Errorf("transfer to container %s ifname %s: holds %s: %w", nk.ContainerID, nk.IfName, dst.held, store.ErrInUse)
		}
		next := sn.alloc
		next.Holder = to
		ak := s.allocKey(k.Space, sn.held)
		cmps := []clientv3.Cmp{
			clientv3.Compare(clientv3.ModRevision(ak), "=", sn.allocRev),
			clientv3.Compare(clientv3.ModRevision(s.holderKey(k)), "=", sn.holderRev),
			clientv3.Compare(clientv3.ModRevision(s.holderKey(nk)), "=", dst.holderRev),
		}
		ops := []clientv3.Op{clientv3.OpPut(ak, encodeAlloc(next)), clientv3.OpPut(s.holderKey(nk), encodeHolder(nk, sn.held)),
			clientv3.OpDelete(s.holderKey(k))}
		ok, err := s.commit(ctx, cmps, ops)
		if err != nil {
			return store.Allocation{}, err
		}
		if ok {
			return next, nil
		}
		if err := s.backoff.Wait(ctx, min(attempt, 6), rnd); err != nil {
			return store.Allocation{}, err
		}
	}
	return store.Allocation{}, fmt.Errorf("transfer in %q: %w: no transaction committed", k.Space, store.ErrUnavailable)
}
