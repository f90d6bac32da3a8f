package kubestore_test

import (
	"net/http"
	"net/netip"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/internal/testbed/faults"
	"github.com/plexus-cni/plexus/pkg/ipam/alloc"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
	"github.com/plexus-cni/plexus/pkg/ipam/store/kubestore"
	"github.com/plexus-cni/plexus/pkg/ipam/store/storetest"
)

// TestSuite runs the shared store suite on the test bed's kube-apiserver,
// each scenario in its own namespace; a hooked client reports its writes
// through its HTTP transport.
func TestSuite(t *testing.T) {
	env := testbed.Require(t)
	storetest.Run(t, func(t testing.TB) func(storetest.WriteHook) store.Store {
		ns := env.Namespace(t, "ipam")
		return func(h storetest.WriteHook) store.Store {
			cfg := rest.CopyConfig(env.RESTConfig)
			if h != nil {
				cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return faults.Transport(rt, h) }
			}
			s, err := kubestore.New(cfg, kubestore.Options{Namespace: ns})
			if err != nil {
				t.Fatalf("kubestore.New: %v", err)
			}
			s.Logf = t.Logf
			return s
		}
	}, storetest.Options{FillTimeout: time.Minute, FillIndexOnly: true})
}

// BenchmarkAllocate: 1000 allocations by 50 clients on an empty and on a
// 90%-full /16. Run with -bench Allocate -benchtime 1x.
func BenchmarkAllocate(b *testing.B) {
	env := testbed.Require(b)
	storetest.Bench(b, func(t testing.TB) func(storetest.WriteHook) store.Store {
		ns := env.Namespace(t, "ipam-bench")
		return func(storetest.WriteHook) store.Store {
			s, err := kubestore.New(env.RESTConfig, kubestore.Options{Namespace: ns})
			if err != nil {
				t.Fatalf("kubestore.New: %v", err)
			}
			return s
		}
	}, storetest.Options{FillIndexOnly: true})
}

// TestRequestsPerAdd pins the cost of an uncontended ADD (docs/ipam.md):
// read the IPSpace, create the IPAttachment and the IPAllocation, write
// the IPSpace; a repeated ADD reads and returns.
func TestRequestsPerAdd(t *testing.T) {
	env := testbed.Require(t)
	s, err := kubestore.New(env.RESTConfig, kubestore.Options{Namespace: env.Namespace(t, "ipam-cost")})
	if err != nil {
		t.Fatal(err)
	}
	r, err := alloc.NewRange(netip.MustParsePrefix("10.40.0.0/24"), netip.Addr{}, netip.Addr{}, netip.Addr{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	add := func(cid string) int64 {
		before := s.Stats().Requests
		if _, err := s.Allocate(t.Context(), store.Request{Space: "net:", Range: r, Holder: store.Holder{ContainerID: cid, IfName: "net1"}}); err != nil {
			t.Fatalf("Allocate %s: %v", cid, err)
		}
		return s.Stats().Requests - before
	}
	add("first") // creates the IPSpace
	if n := add("second"); n != 4 {
		t.Errorf("an uncontended ADD made %d requests, want 4", n)
	}
	if n := add("second"); n != 4 {
		t.Errorf("a repeated ADD made %d requests, want 4 (read index, create attachment, read it, read allocation)", n)
	}
}
