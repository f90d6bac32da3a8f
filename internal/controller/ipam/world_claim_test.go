package ipam

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// The API server's answer decides: a claim found exists, one being
// deleted (a finalizer pending after its owner went) and a missing one do
// not; any other failure is an error (the reservation is kept).
func TestLiveWorldClaimExists(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/apis/k8s.cni.cncf.io/v1alpha1/namespaces/ns/ipamclaims/live":
			_, _ = w.Write([]byte(`{"apiVersion":"k8s.cni.cncf.io/v1alpha1","kind":"IPAMClaim","metadata":{"name":"live"}}`))
		case "/apis/k8s.cni.cncf.io/v1alpha1/namespaces/ns/ipamclaims/dying":
			_, _ = w.Write([]byte(`{"apiVersion":"k8s.cni.cncf.io/v1alpha1","kind":"IPAMClaim","metadata":{"name":"dying","deletionTimestamp":"2026-11-28T00:00:00Z","finalizers":["x"]}}`))
		case "/apis/k8s.cni.cncf.io/v1alpha1/namespaces/ns/ipamclaims/broken":
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","code":500}`))
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}`))
		}
	}))
	defer srv.Close()
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	w := newLiveWorld(t.Context(), cs)
	for name, want := range map[string]bool{"live": true, "dying": false, "gone": false} {
		if got, err := w.ClaimExists("ns", name); err != nil || got != want {
			t.Errorf("ClaimExists(%s) = %v, %v; want %v", name, got, err, want)
		}
	}
	if _, err := w.ClaimExists("ns", "broken"); err == nil {
		t.Error("a failed read was taken for an answer")
	}
}
