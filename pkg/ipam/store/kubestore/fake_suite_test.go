package kubestore_test

import (
	"net/http"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/plexus-cni/plexus/internal/testbed/faults"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
	"github.com/plexus-cni/plexus/pkg/ipam/store/kubestore"
	"github.com/plexus-cni/plexus/pkg/ipam/store/storetest"
)

// TestSuiteOnFakeAPI runs the shared store suite on FakeAPI, so that the
// unit tier checks the Kubernetes store's contract without a test bed
// (TestSuite runs it on a real kube-apiserver); a hooked client reports its
// writes through its HTTP transport, as there.
func TestSuiteOnFakeAPI(t *testing.T) {
	storetest.Run(t, func(t testing.TB) func(storetest.WriteHook) store.Store {
		api := kubestore.NewFakeAPI(t)
		return func(h storetest.WriteHook) store.Store {
			cfg := rest.CopyConfig(api.Config)
			if h != nil {
				cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return faults.Transport(rt, h) }
			}
			s, err := kubestore.New(cfg, kubestore.Options{Namespace: "ipam"})
			if err != nil {
				t.Fatalf("kubestore.New: %v", err)
			}
			return s
		}
	}, storetest.Options{FillTimeout: time.Minute, FillIndexOnly: true})
}
