package kubestore_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"sync"
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
// the IPSpace; a client that read or wrote the IPSpace in the last seconds
// (plexusd's, serving every ADD of its node) skips the read. A repeated
// ADD reads and returns.
func TestRequestsPerAdd(t *testing.T) {
	env := testbed.Require(t)
	ns := env.Namespace(t, "ipam-cost")
	client := func() *kubestore.Store {
		s, err := kubestore.New(env.RESTConfig, kubestore.Options{Namespace: ns})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	r, err := alloc.NewRange(netip.MustParsePrefix("10.40.0.0/24"), netip.Addr{}, netip.Addr{}, netip.Addr{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	add := func(s *kubestore.Store, cid string) int64 {
		before := s.Stats().Requests
		if _, err := s.Allocate(t.Context(), store.Request{Space: "net:", Range: r, Holder: store.Holder{ContainerID: cid, IfName: "net1"}}); err != nil {
			t.Fatalf("Allocate %s: %v", cid, err)
		}
		return s.Stats().Requests - before
	}
	add(client(), "first") // creates the IPSpace
	if n := add(client(), "second"); n != 4 {
		t.Errorf("an uncontended ADD by a new client made %d requests, want 4", n)
	}
	s := client()
	add(s, "third")
	if n := add(s, "fourth"); n != 3 {
		t.Errorf("an ADD by a client that just wrote the index made %d requests, want 3", n)
	}
	if n := add(client(), "second"); n != 4 {
		t.Errorf("a repeated ADD made %d requests, want 4 (read index, create attachment, read it, read allocation)", n)
	}
}

// One client's concurrent allocations of a space (plexusd serving a burst
// of its node's pods) take the lowest free addresses, one each, without a
// lost race among themselves; the index is read once and written in
// batches. Their releases batch the index writes too.
func TestConcurrentAllocationsOfOneClient(t *testing.T) {
	env := testbed.Require(t)
	s, err := kubestore.New(env.RESTConfig, kubestore.Options{Namespace: env.Namespace(t, "ipam-burst")})
	if err != nil {
		t.Fatal(err)
	}
	r, err := alloc.NewRange(netip.MustParsePrefix("10.41.0.0/24"), netip.Addr{}, netip.Addr{}, netip.Addr{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	got := make([]netip.Addr, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := s.Allocate(t.Context(), store.Request{Space: "net:", Range: r,
				Holder: store.Holder{ContainerID: fmt.Sprintf("c%d", i), IfName: "net1"}})
			got[i], errs[i] = a.Address, err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(a, b netip.Addr) int { return a.Compare(b) })
	want := netip.MustParseAddr("10.41.0.1")
	for _, a := range got {
		if a != want {
			t.Fatalf("addresses %v, want the lowest %d of the range, one each", got, n)
		}
		want = want.Next()
	}
	st := s.Stats()
	t.Logf("%d allocations: %d requests, %d lost races, %d index conflicts", n, st.Requests, st.ClaimConflicts, st.IndexConflicts)
	if st.ClaimConflicts != 0 || st.Requests > 3*n {
		t.Errorf("%d requests (%.1f per allocation) and %d lost races; want at most 3 per allocation and none lost",
			st.Requests, float64(st.Requests)/n, st.ClaimConflicts)
	}
	before := st.Requests
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Release(t.Context(), store.Key{Space: "net:", ContainerID: fmt.Sprintf("c%d", i), IfName: "net1"})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	// Each release reads the attachment and the allocation and deletes
	// both; the index writes are shared.
	if req := s.Stats().Requests - before; req > 5*n {
		t.Errorf("%d releases made %d requests, want at most %d", n, req, 5*n)
	}
	if infos, err := s.Spaces(t.Context()); err != nil || len(infos) != 1 || infos[0].Allocated != 0 {
		t.Errorf("index after releasing everything: %+v (%v), want empty", infos, err)
	}
}
