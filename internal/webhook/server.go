package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-cni/plexus/internal/controller/metrics"
)

// Paths served; deploy/webhook registers them.
const (
	PathNADs               = "/validate/network-attachment-definitions"
	PathPods               = "/validate/pods"
	PathNetworkDefinitions = "/validate/networkdefinitions"
	PathMutatePods         = "/mutate/pods"
	PathHealth             = "/healthz"
)

// maxBody bounds an AdmissionReview (objects are at most ~1.5 MiB in etcd).
const maxBody = 4 << 20

// Handler serves AdmissionReview requests.
type Handler struct {
	V *Validator
	// I answers the mutating webhook (nil: PathMutatePods is not served).
	I   *Injector
	Log *slog.Logger
	// Metrics records each review's latency and denials (nil: none).
	Metrics *metrics.Metrics
}

// Mux returns the webhook's routes.
func (h *Handler) Mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("POST "+PathNADs, h.review(metrics.Validating, func(_ context.Context, req *admissionv1.AdmissionRequest) Verdict {
		return h.V.NAD(req.Object.Raw, req.Namespace)
	}))
	mux.Handle("POST "+PathPods, h.review(metrics.Validating, func(ctx context.Context, req *admissionv1.AdmissionRequest) Verdict {
		return h.V.Pod(ctx, req.Object.Raw, req.Namespace)
	}))
	mux.Handle("POST "+PathNetworkDefinitions, h.review(metrics.Validating, func(_ context.Context, req *admissionv1.AdmissionRequest) Verdict {
		return h.V.NetworkDefinition(req.Object.Raw)
	}))
	if h.I != nil {
		mux.Handle("POST "+PathMutatePods, h.review(metrics.Mutating, func(ctx context.Context, req *admissionv1.AdmissionRequest) Verdict {
			return h.I.Pod(ctx, req.Object.Raw, req.Namespace)
		}))
	}
	mux.HandleFunc("GET "+PathHealth, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	return mux
}

// review decodes an AdmissionReview, runs check on its object and answers
// (with check's patch, if any, when it allows); webhook labels the metrics.
func (h *Handler) review(webhook string, check func(context.Context, *admissionv1.AdmissionRequest) Verdict) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rev admissionv1.AdmissionReview
		if err := json.NewDecoder(io.LimitReader(r.Body, maxBody)).Decode(&rev); err != nil || rev.Request == nil {
			http.Error(w, fmt.Sprintf("want an admission.k8s.io/v1 AdmissionReview with a request: %v", err), http.StatusBadRequest)
			return
		}
		req := rev.Request
		start := time.Now()
		resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
		if req.Operation != admissionv1.Delete && len(req.Object.Raw) > 0 {
			v := check(r.Context(), req)
			resp.Warnings = v.Warnings
			if len(v.Problems) > 0 {
				resp.Allowed = false
				resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusUnprocessableEntity,
					Reason: metav1.StatusReasonInvalid, Message: "plexus: " + strings.Join(v.Problems, "; ")}
			} else if len(v.Patch) > 0 {
				pt := admissionv1.PatchTypeJSONPatch
				resp.Patch, resp.PatchType = v.Patch, &pt
			}
			h.Log.Debug("admission", "webhook", webhook, "kind", req.Kind.Kind, "object", req.Namespace+"/"+req.Name,
				"allowed", resp.Allowed, "problems", len(v.Problems), "patched", resp.Patch != nil)
		}
		h.Metrics.Admitted(webhook, req.Kind.Kind, time.Since(start), resp.Allowed)
		out := admissionv1.AdmissionReview{TypeMeta: rev.TypeMeta, Response: resp}
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(out); err != nil {
			h.Log.Warn("writing admission response", "error", err)
		}
	})
}
