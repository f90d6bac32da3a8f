package memstore_test

import (
	"testing"

	"github.com/plexus-cni/plexus/pkg/ipam/store"
	"github.com/plexus-cni/plexus/pkg/ipam/store/memstore"
	"github.com/plexus-cni/plexus/pkg/ipam/store/storetest"
)

func TestSuite(t *testing.T) {
	storetest.Run(t, func(t testing.TB) func(storetest.WriteHook) store.Store {
		s := memstore.New()
		return func(h storetest.WriteHook) store.Store { return storetest.HookOps(s, h) }
	}, storetest.Options{})
}
