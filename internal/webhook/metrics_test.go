package webhook

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/plexus-cni/plexus/internal/controller/metrics"
)

// Every review is timed by kind; a denied one is counted.
func TestReviewMetrics(t *testing.T) {
	m := metrics.New()
	h := &Handler{V: &Validator{NADs: fakeNADs{}}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: m}
	srv := httptest.NewServer(h.Mux())
	defer srv.Close()
	for _, config := range []string{`"{\"cniVersion\":\"0.3.1\",\"type\":\"macvlan\"}"`, `"{\"cniVersion\":\"0.3.1\"}"`} {
		rev := admissionv1.AdmissionReview{
			TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
			Request: &admissionv1.AdmissionRequest{UID: "u", Operation: admissionv1.Create, Namespace: "ns",
				Kind:   metav1.GroupVersionKind{Group: "k8s.cni.cncf.io", Version: "v1", Kind: "NetworkAttachmentDefinition"},
				Object: runtime.RawExtension{Raw: nadJSON(config)}},
		}
		body, _ := json.Marshal(rev)
		resp, err := srv.Client().Post(srv.URL+PathNADs, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	out := rec.Body.String()
	for _, want := range []string{
		`plexus_webhook_admission_duration_seconds_count{kind="NetworkAttachmentDefinition"} 2`,
		`plexus_webhook_denials_total{kind="NetworkAttachmentDefinition"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
