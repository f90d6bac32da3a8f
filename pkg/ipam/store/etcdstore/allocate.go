package etcdstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/plexus-cni/plexus/pkg/ipam/alloc"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

// maxTxnAttempts bounds the transactions of one call; each lost one means
// another allocation of the space committed, so progress is guaranteed.
const maxTxnAttempts = 1000

// etcdRange is the reply to a get.
type etcdRange = etcdserverpb.RangeResponse

// snapshot is what the store read about a holder key and its space.
type snapshot struct {
	key       store.Key
	holderRev int64 // mod revision of the holder key; 0: absent
	held      netip.Addr
	allocRev  int64 // mod revision of held's allocation key; 0: absent
	alloc     store.Allocation
	indexRev  int64 // mod revision of the index key; 0: absent
	index     *alloc.Set
}

// owned reports whether the holder key holds its allocation.
func (sn *snapshot) owned() bool { return sn.allocRev != 0 && sn.alloc.Owns(sn.key) }

// read fetches the holder key and the index in one transaction, then the
// allocation the holder points at.
func (s *Store) read(ctx context.Context, k store.Key) (*snapshot, error) {
	s.requests.Add(1)
	resp, err := s.cli.Txn(ctx).Then(clientv3.OpGet(s.holderKey(k)), clientv3.OpGet(s.indexKey(k.Space))).Commit()
	if err != nil {
		return nil, classify(err, "reading holder and index")
	}
	sn := &snapshot{key: k}
	if err := sn.setHolder(resp.Responses[0].GetResponseRange()); err != nil {
		return nil, err
	}
	if err := sn.setIndex(resp.Responses[1].GetResponseRange()); err != nil {
		return nil, err
	}
	return sn, s.readHeld(ctx, sn)
}

// readHeld reads the allocation of the address the holder points at.
func (s *Store) readHeld(ctx context.Context, sn *snapshot) error {
	sn.allocRev, sn.alloc = 0, store.Allocation{}
	if !sn.held.IsValid() {
		return nil
	}
	s.requests.Add(1)
	resp, err := s.cli.Get(ctx, s.allocKey(sn.key.Space, sn.held))
	if err != nil {
		return classify(err, "reading allocation")
	}
	return sn.setAlloc((*etcdRange)(resp))
}

func (sn *snapshot) setHolder(r *etcdRange) error {
	sn.holderRev, sn.held = 0, netip.Addr{}
	if r == nil || len(r.Kvs) == 0 {
		return nil
	}
	var h holderRecord
	if err := json.Unmarshal(r.Kvs[0].Value, &h); err != nil {
		return fmt.Errorf("holder record %s: %w", r.Kvs[0].Key, err)
	}
	sn.holderRev = r.Kvs[0].ModRevision
	sn.held, _ = netip.ParseAddr(h.Address)
	return nil
}

func (sn *snapshot) setIndex(r *etcdRange) error {
	sn.indexRev, sn.index = 0, &alloc.Set{}
	if r == nil || len(r.Kvs) == 0 {
		return nil
	}
	var rec indexRecord
	if err := json.Unmarshal(r.Kvs[0].Value, &rec); err != nil {
		return fmt.Errorf("index record %s: %w", r.Kvs[0].Key, err)
	}
	if err := sn.index.UnmarshalBinary(rec.Index); err != nil {
		return fmt.Errorf("index record %s: %w", r.Kvs[0].Key, err)
	}
	sn.indexRev = r.Kvs[0].ModRevision
	return nil
}

func (sn *snapshot) setAlloc(r *etcdRange) error {
	sn.allocRev = 0
	if r == nil || len(r.Kvs) == 0 {
		return nil
	}
	a, err := decodeAlloc(r.Kvs[0].Value)
	if err != nil {
		return err
	}
	sn.allocRev, sn.alloc = r.Kvs[0].ModRevision, a
	return nil
}

// Allocate implements store.Store: one transaction creates the allocation
// (if absent), points the holder at it (if unchanged) and updates the
// index (if unchanged; see tryClaim); a lost transaction returns what
// changed, and the call tries again from there.
func (s *Store) Allocate(ctx context.Context, req store.Request) (store.Allocation, error) {
	if req.Range == nil && !req.Want.IsValid() {
		return store.Allocation{}, errors.New("allocate: no range and no requested address")
	}
	sn, err := s.readWithIndex(ctx, req.Key())
	if err != nil {
		return store.Allocation{}, err
	}
	c := &claim{req: req, taken: &alloc.Set{}, rnd: store.NewRand(), bias: s.heat.Bias(req.Space), slot: s.slot}
	defer func() { s.heat.Lost(req.Space, c.conflicts) }() // this client's own memory: not shared through etcd
	for attempt := 0; attempt < maxTxnAttempts; attempt++ {
		if sn.owned() && (!req.Want.IsValid() || req.Want == sn.held) {
			return sn.alloc, nil
		}
		cand, err := c.pick(sn)
		if err != nil {
			return store.Allocation{}, err
		}
		done, a, err := s.tryClaim(ctx, sn, c, cand)
		if err != nil || done {
			return a, err
		}
	}
	return store.Allocation{}, fmt.Errorf("allocate in %q: %w: no transaction committed after %d attempts", req.Space, store.ErrUnavailable, maxTxnAttempts)
}

// readWithIndex reads the snapshot; a space without an index key (first
// use, or the key was deleted) gets one built from its allocations.
func (s *Store) readWithIndex(ctx context.Context, k store.Key) (*snapshot, error) {
	sn, err := s.read(ctx, k)
	if err != nil || sn.indexRev != 0 {
		return sn, err
	}
	if err := s.createIndex(ctx, k.Space); err != nil {
		return nil, err
	}
	return s.read(ctx, k)
}

// createIndex writes the index of a space from its allocations if the
// index key does not exist; if another allocator wrote it first, that is
// fine too.
func (s *Store) createIndex(ctx context.Context, space string) error {
	allocs, err := s.List(ctx, store.Filter{Space: space})
	if err != nil {
		return err
	}
	idx, err := encodeIndex(space, store.IndexOf(allocs))
	if err != nil {
		return err
	}
	cmp := clientv3.Compare(clientv3.CreateRevision(s.indexKey(space)), "=", 0)
	_, err = s.commit(ctx, []clientv3.Cmp{cmp}, []clientv3.Op{clientv3.OpPut(s.indexKey(space), idx)})
	return err
}

// claim is the state of one Allocate call.
type claim struct {
	req       store.Request
	taken     *alloc.Set // found allocated though the index said free
	conflicts int
	// bias is the space's contention (store.Heat.Bias): how wide the
	// claim spreads once it lost a race (store.Pick).
	bias int
	slot uint64 // the client's (Store.slot)
	rnd  *rand.Rand
}

func (c *claim) pick(sn *snapshot) (netip.Addr, error) {
	if c.req.Want.IsValid() {
		return c.req.Want, nil
	}
	used := sn.index
	if len(c.taken.Runs()) > 0 {
		used = sn.index.Clone()
		for _, r := range c.taken.Runs() {
			used.AddRun(r.Lo, r.Hi)
		}
	}
	a, ok := store.Pick(c.req.Range, used, c.conflicts, c.bias, c.slot, c.rnd)
	if !ok {
		return netip.Addr{}, fmt.Errorf("range %s-%s: %w", c.req.Range.First, c.req.Range.Last, store.ErrExhausted)
	}
	return a, nil
}
