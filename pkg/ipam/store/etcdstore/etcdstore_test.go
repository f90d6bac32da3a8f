package etcdstore_test

import (
	"fmt"
	"testing"

	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
	"github.com/plexus-cni/plexus/pkg/ipam/store/etcdstore"
	"github.com/plexus-cni/plexus/pkg/ipam/store/storetest"
)

// TestSuite runs the shared store suite on a private etcd, each scenario
// under its own key prefix.
func TestSuite(t *testing.T) {
	storetest.Run(t, backing(testbed.StartEtcd(t)), storetest.Options{})
}

// BenchmarkAllocate: 1000 allocations by 50 clients on an empty and on a
// 90%-full /16. Run with -bench Allocate -benchtime 1x.
func BenchmarkAllocate(b *testing.B) {
	storetest.Bench(b, backing(testbed.StartEtcd(b)), storetest.Options{})
}

// backing gives each test its own key prefix on one etcd.
func backing(endpoint string) storetest.Backing {
	n := 0
	return func(t testing.TB) func() store.Store {
		n++
		prefix := fmt.Sprintf("/test/%d/", n)
		return func() store.Store {
			s, err := etcdstore.New(etcdstore.Options{Endpoints: []string{endpoint}, Prefix: prefix})
			if err != nil {
				t.Fatalf("etcdstore.New: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	}
}
