package etcdstore

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

// importBatch is how many allocations one import transaction writes (two
// keys each, under etcd's default limit of 128 operations).
const importBatch = 60

// Import implements store.Store: batches of allocations and holder keys,
// each batch created only if none of its addresses is allocated, then the
// index of every space touched is rebuilt.
func (s *Store) Import(ctx context.Context, allocs []store.Allocation) error {
	spaces := map[string]bool{}
	for start := 0; start < len(allocs); start += importBatch {
		batch := allocs[start:min(start+importBatch, len(allocs))]
		var cmps []clientv3.Cmp
		var ops []clientv3.Op
		for _, a := range batch {
			spaces[a.Space] = true
			key := s.allocKey(a.Space, a.Address)
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(key), "=", 0))
			ops = append(ops, clientv3.OpPut(key, encodeAlloc(a)), clientv3.OpPut(s.holderKey(a.Key()), encodeHolder(a.Key(), a.Address)))
		}
		s.requests.Add(1)
		resp, err := s.cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
		if err != nil {
			return classify(err, "import transaction")
		}
		if !resp.Succeeded {
			return fmt.Errorf("import of %s..%s: %w", batch[0].Address, batch[len(batch)-1].Address, store.ErrInUse)
		}
	}
	for sp := range spaces {
		if err := s.RebuildIndex(ctx, sp); err != nil {
			return err
		}
	}
	return nil
}
