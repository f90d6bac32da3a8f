package kubestore

import (
	"context"
	"fmt"
	"net/netip"
	"sync"

	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

// importWorkers is how many creates Import keeps in flight.
const importWorkers = 32

// Import implements store.Store: it creates the IPAttachment and the
// IPAllocation of each entry, importWorkers at a time, then rebuilds the
// index of every space touched.
func (s *Store) Import(ctx context.Context, allocs []store.Allocation) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan store.Allocation)
	var wg sync.WaitGroup
	for i := 0; i < importWorkers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range work {
				if err := s.importOne(ctx, a); err != nil {
					cancel(err)
				}
			}
		}()
	}
	spaces := map[string]bool{}
	for _, a := range allocs {
		spaces[a.Space] = true
		select {
		case work <- a:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	for sp := range spaces {
		if err := s.RebuildIndex(ctx, sp); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) importOne(ctx context.Context, a store.Allocation) error {
	if err := s.create(ctx, v1.ResourceIPAttachments, toAttachmentObject(a.Key(), a.Holder, a.Address, netip.Addr{}), &v1.IPAttachment{}); err != nil {
		return classify(err, fmt.Sprintf("import %s: creating ipattachment", a.Address))
	}
	if err := s.create(ctx, v1.ResourceIPAllocations, toAllocationObject(a), &v1.IPAllocation{}); err != nil {
		return classify(err, fmt.Sprintf("import %s: creating ipallocation", a.Address))
	}
	return nil
}
