package etcdstore_test

import (
	"fmt"
	"testing"

	"google.golang.org/grpc"

	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/internal/testbed/faults"
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

// backing gives each test its own key prefix on one etcd; a hooked client
// reports its writes through a gRPC interceptor.
func backing(endpoint string) storetest.Backing {
	n := 0
	return func(t testing.TB) func(storetest.WriteHook) store.Store {
		n++
		prefix := fmt.Sprintf("/test/%d/", n)
		return func(h storetest.WriteHook) store.Store {
			o := etcdstore.Options{Endpoints: []string{endpoint}, Prefix: prefix}
			if h != nil {
				o.DialOptions = []grpc.DialOption{grpc.WithChainUnaryInterceptor(faults.EtcdInterceptor(h))}
			}
			s, err := etcdstore.New(o)
			if err != nil {
				t.Fatalf("etcdstore.New: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	}
}
