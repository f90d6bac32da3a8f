package kube

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// seen is one request the fake API server answered.
type seen struct {
	method, path, query, contentType, auth, agent, client string
	proto                                                 int
	body                                                  string
}

// fakeServer serves the API paths of the plugin over TLS with HTTP/2,
// asking for a client certificate signed by pki's CA.
type fakeServer struct {
	mu       sync.Mutex
	requests []seen
	busy     int // answers 429 with Retry-After this many times first
	srv      *httptest.Server
}

func newFakeServer(t *testing.T, pki *testPKI) *fakeServer {
	f := &fakeServer{}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	pool := x509.NewCertPool()
	pool.AddCert(pki.ca)
	f.srv.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool}
	f.srv.EnableHTTP2 = true
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s := seen{method: r.Method, path: r.URL.Path, query: r.URL.RawQuery, contentType: r.Header.Get("Content-Type"),
		auth: r.Header.Get("Authorization"), agent: r.Header.Get("User-Agent"), proto: r.ProtoMajor, body: string(body)}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		s.client = r.TLS.PeerCertificates[0].Subject.CommonName
	}
	f.mu.Lock()
	f.requests = append(f.requests, s)
	busy := f.busy > 0
	f.busy--
	f.mu.Unlock()
	status := func(code int, reason metav1.StatusReason) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
			Status: metav1.StatusFailure, Reason: reason, Code: int32(code), Message: "from the fake"})
	}
	switch {
	case busy:
		w.Header().Set("Retry-After", "0")
		status(http.StatusTooManyRequests, metav1.StatusReasonTooManyRequests)
	case r.URL.Path == "/prefix/api/v1/namespaces/ns/pods/p":
		_ = json.NewEncoder(w).Encode(&corev1.Pod{TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "u1", Annotations: map[string]string{"a": "b"}},
			Spec:       corev1.PodSpec{NodeName: "n1"}})
	case r.URL.Path == "/prefix/api/v1/namespaces/ns/pods/gone":
		status(http.StatusNotFound, metav1.StatusReasonNotFound)
	case r.URL.Path == "/prefix/api/v1/namespaces/ns/pods/p/status":
		status(http.StatusConflict, metav1.StatusReasonConflict)
	case r.URL.Path == "/prefix/api/v1/namespaces/ns/events":
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{}`))
	case r.URL.Path == "/prefix/apis/resource.k8s.io/v1/resourceslices":
		_, _ = w.Write([]byte(`{"kind":"ResourceSliceList","items":[{"metadata":{"name":"s1"}}]}`))
	default:
		// A proxy's or an old server's plain 404, not a Status.
		http.Error(w, "404 page not found", http.StatusNotFound)
	}
}

func (f *fakeServer) last() seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[len(f.requests)-1]
}

// TestRESTAPI runs the plugin's requests through a kubeconfig with a token,
// a client certificate and the server's CA against a fake API server over
// TLS: what goes on the wire, and how answers and errors come back.
func TestRESTAPI(t *testing.T) {
	pki := newTestPKI(t)
	f := newFakeServer(t, pki)
	serverCA := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
	path := writeKubeconfig(t, t.TempDir(), "server: "+f.srv.URL+"/prefix\ncertificate-authority-data: "+b64(serverCA),
		"token: tok\nclient-certificate-data: "+b64(pki.cert)+"\nclient-key-data: "+b64(pki.key))
	c, err := NewFromKubeconfig(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	pod, err := c.GetPod(ctx, "ns", "p")
	if err != nil || pod.UID != "u1" || pod.Spec.NodeName != "n1" || pod.Annotations["a"] != "b" {
		t.Fatalf("GetPod: %+v, %v", pod, err)
	}
	if r := f.last(); r.auth != "Bearer tok" || r.client != pki.clientName || r.agent != "plexus" || r.proto != 2 {
		t.Errorf("GET pod went as %+v: want the token, the client certificate, user agent plexus, HTTP/2", r)
	}
	if _, err := c.GetPod(ctx, "ns", "gone"); !apierrors.IsNotFound(err) {
		t.Errorf("GetPod of a missing pod: %v, want NotFound", err)
	}
	if _, err := c.NAD(ctx, "ns", "absent"); err == nil || !strings.Contains(err.Error(), "ns/absent") {
		t.Errorf("NAD behind a plain 404: %v, want not found naming ns/absent", err)
	}
	if _, err := c.api.GetNAD(ctx, "ns", "absent"); !apierrors.IsNotFound(err) {
		t.Errorf("GetNAD behind a plain 404: %v, want NotFound", err)
	}

	// A conflict is retried by SetNetworkStatus; the API's answer stays
	// the error's cause.
	err = c.api.PatchPodStatus(ctx, "ns", "p", []byte(`{"metadata":{}}`))
	if !apierrors.IsConflict(err) {
		t.Errorf("PatchPodStatus: %v, want Conflict", err)
	}
	if r := f.last(); r.method != http.MethodPatch || r.contentType != "application/merge-patch+json" || r.body != `{"metadata":{}}` {
		t.Errorf("patch went as %+v", r)
	}

	// 429 with Retry-After is asked again.
	f.mu.Lock()
	f.busy = 2
	before := len(f.requests)
	f.mu.Unlock()
	if err := c.RecordEvents(ctx, pod, []Event{{Type: corev1.EventTypeNormal, Reason: "AddedInterface", Message: "m"}}); err != nil {
		t.Fatalf("RecordEvents after two 429s: %v", err)
	}
	f.mu.Lock()
	asked := len(f.requests) - before
	f.mu.Unlock()
	if asked != 3 {
		t.Errorf("event POST asked %d times, want 3 (two 429s, then created)", asked)
	}
	r := f.last()
	var ev corev1.Event
	if err := json.Unmarshal([]byte(r.body), &ev); err != nil || ev.Kind != "Event" || ev.APIVersion != "v1" ||
		ev.InvolvedObject.UID != "u1" || ev.Reason != "AddedInterface" || r.contentType != "application/json" {
		t.Errorf("event went as %s (%s): %v", r.body, r.contentType, err)
	}

	slices, err := c.ResourceSlices(ctx, "n1", "drv.example")
	if err != nil || len(slices) != 1 || slices[0].Name != "s1" {
		t.Errorf("ResourceSlices: %v, %v", slices, err)
	}
	if q := f.last().query; !strings.Contains(q, "fieldSelector=") || !strings.Contains(q, "n1") || !strings.Contains(q, "drv.example") {
		t.Errorf("slices listed with query %q, want the node and driver selector", q)
	}
}

// TestRESTAPIRefusesAnUntrustedServer: without the server's CA the TLS
// handshake fails; nothing is sent.
func TestRESTAPIRefusesAnUntrustedServer(t *testing.T) {
	pki := newTestPKI(t)
	f := newFakeServer(t, pki)
	path := writeKubeconfig(t, t.TempDir(), "server: "+f.srv.URL+"\ncertificate-authority-data: "+b64(pki.caPEM), "token: tok")
	c, err := NewFromKubeconfig(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetPod(t.Context(), "ns", "p"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("GetPod from a server the CA did not sign: %v, want a certificate error", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) != 0 {
		t.Errorf("%d requests reached the server", len(f.requests))
	}
}
