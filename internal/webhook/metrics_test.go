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

// post sends one CREATE review of kind with obj to path and returns the
// response.
func post(t *testing.T, srv *httptest.Server, path, kind string, obj []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	rev := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: "u", Operation: admissionv1.Create, Namespace: "tomcat",
			Kind: metav1.GroupVersionKind{Kind: kind}, Object: runtime.RawExtension{Raw: obj}},
	}
	body, _ := json.Marshal(rev)
	resp, err := srv.Client().Post(srv.URL+path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Response == nil {
		t.Fatalf("%s: bad answer (%v)", path, err)
	}
	return out.Response
}

// Every review is timed by webhook and kind; a denied one is counted.
func TestReviewMetrics(t *testing.T) {
	m := metrics.New()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := &Handler{V: &Validator{NADs: fakeNADs{}}, I: &Injector{NADs: fakeNADs{}, Log: log}, Log: log, Metrics: m}
	srv := httptest.NewServer(h.Mux())
	defer srv.Close()
	for _, config := range []string{`"{\"cniVersion\":\"0.3.1\",\"type\":\"macvlan\"}"`, `"{\"cniVersion\":\"0.3.1\"}"`} {
		post(t, srv, PathNADs, "NetworkAttachmentDefinition", nadJSON(config))
	}
	post(t, srv, PathMutatePods, "Pod", injPod(`"k8s.v1.cni.cncf.io/networks":"absent"`))
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	out := rec.Body.String()
	for _, want := range []string{
		`plexus_webhook_admission_duration_seconds_count{kind="NetworkAttachmentDefinition",webhook="validating"} 2`,
		`plexus_webhook_denials_total{kind="NetworkAttachmentDefinition",webhook="validating"} 1`,
		`plexus_webhook_admission_duration_seconds_count{kind="Pod",webhook="mutating"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// The mutating endpoint answers with a JSON patch, or with no patch and
// allowed when the pod needs nothing or the NADs cannot be read.
func TestMutateEndpoint(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	nads := fakeNADs{"tomcat/sriov": "plexus.dev/testnic"}
	srv := httptest.NewServer((&Handler{V: &Validator{NADs: nads}, I: &Injector{NADs: nads, Log: log}, Log: log}).Mux())
	defer srv.Close()
	got := post(t, srv, PathMutatePods, "Pod", injPod(`"k8s.v1.cni.cncf.io/networks":"sriov,sriov"`))
	want := `[{"op":"add","path":"/spec/containers/0/resources","value":{"limits":{"plexus.dev/testnic":"2"},"requests":{"plexus.dev/testnic":"2"}}}]`
	if !got.Allowed || got.PatchType == nil || *got.PatchType != admissionv1.PatchTypeJSONPatch || string(got.Patch) != want {
		t.Errorf("allowed %v, patch type %v, patch %s; want allowed, JSONPatch, %s", got.Allowed, got.PatchType, got.Patch, want)
	}
	for _, ann := range []string{`"a":"b"`, `"k8s.v1.cni.cncf.io/networks":"down/x"`} {
		got := post(t, srv, PathMutatePods, "Pod", injPod(ann))
		if !got.Allowed || got.Patch != nil || got.PatchType != nil {
			t.Errorf("%s: allowed %v, patch %s; want allowed without patch", ann, got.Allowed, got.Patch)
		}
	}
}
