package kube

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	resourcev1 "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stypes "k8s.io/apimachinery/pkg/types"
	kjson "sigs.k8s.io/json"
)

// API is the requests a Client makes. Errors are the API server's
// (apierrors tells them apart).
type API interface {
	GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error)
	// PatchPodStatus applies a merge patch to the pod's status subresource.
	PatchPodStatus(ctx context.Context, namespace, name string, patch []byte) error
	CreateEvent(ctx context.Context, ev *corev1.Event) error
	GetNAD(ctx context.Context, namespace, name string) (*nadv1.NetworkAttachmentDefinition, error)
	GetResourceClaim(ctx context.Context, namespace, name string) (*resourcev1.ResourceClaim, error)
	// ListResourceSlices lists the slices a field selector picks.
	ListResourceSlices(ctx context.Context, fieldSelector string) ([]resourcev1.ResourceSlice, error)
}

// restAPI answers API with plain HTTP requests in JSON: the plugin makes
// six kinds of request, and client-go's REST machinery (with its codecs,
// auth plugins and the gRPC it brings) would cost every exec of the binary
// more time to initialise than the requests themselves take. Over TLS the
// requests share one HTTP/2 connection.
type restAPI struct {
	host   *url.URL
	client *http.Client
	header http.Header
}

// maxRetries bounds the retries of a request that the API server refused
// with Retry-After (429, or 5xx under load), as client-go retries them.
const maxRetries = 5

func newRESTAPI(cfg *Config, timeout time.Duration) (*restAPI, error) {
	host, err := url.Parse(cfg.Host)
	if err != nil || host.Host == "" || (host.Scheme != "http" && host.Scheme != "https") {
		return nil, fmt.Errorf("server %q: not an http(s) URL", cfg.Host)
	}
	proxy := cfg.Proxy
	if proxy == nil {
		proxy = http.ProxyFromEnvironment
	}
	tr := &http.Transport{
		Proxy:               proxy,
		DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     cfg.TLS,
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 25,
	}
	header := cfg.Header.Clone()
	if header == nil {
		header = http.Header{}
	}
	header.Set("User-Agent", "plexus")
	return &restAPI{host: host, client: &http.Client{Transport: tr, Timeout: timeout}, header: header}, nil
}

// call makes one request: path is the API path under the server's URL,
// body (if not nil) is sent as contentType, and a 2xx answer is decoded
// into out (if not nil). Any other answer is returned as the API server's
// status (apierrors tells them apart).
func (a *restAPI) call(ctx context.Context, method, path string, query url.Values, contentType string, body []byte,
	gr schema.GroupResource, name string, out any) error {
	u := *a.host
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawQuery = query.Encode()
	for attempt := 0; ; attempt++ {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
		if err != nil {
			return err
		}
		req.Header = a.header.Clone()
		req.Header.Set("Accept", "application/json")
		if body != nil {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := a.client.Do(req)
		if err != nil {
			return err
		}
		raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		_ = resp.Body.Close()
		if err != nil {
			return fmt.Errorf("%s %s: read the answer: %w", method, path, err)
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			if out == nil {
				return nil
			}
			if err := kjson.UnmarshalCaseSensitivePreserveInts(raw, out); err != nil {
				return fmt.Errorf("%s %s: decode the answer: %w", method, path, err)
			}
			return nil
		}
		wait, retry := retryAfter(resp)
		if retry && attempt < maxRetries {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
			continue
		}
		return statusError(resp.StatusCode, method, gr, name, raw, int(wait/time.Second))
	}
}

// retryAfter says whether the API server asked for the request again
// (429 or 5xx with a Retry-After in seconds) and after how long (at most
// 10 s).
func retryAfter(resp *http.Response) (time.Duration, bool) {
	if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode < 500 {
		return 0, false
	}
	s, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || s < 0 {
		return 0, false
	}
	return min(time.Duration(s)*time.Second, 10*time.Second), true
}

// statusError is the API server's Status when the answer is one, else a
// generic error of the HTTP code, as client-go builds them.
func statusError(code int, method string, gr schema.GroupResource, name string, raw []byte, retryAfter int) error {
	var st metav1.Status
	if json.Unmarshal(raw, &st) == nil && st.Kind == "Status" && st.Status == metav1.StatusFailure {
		if st.Code == 0 {
			st.Code = int32(code)
		}
		return &apierrors.StatusError{ErrStatus: st}
	}
	msg := strings.TrimSpace(firstLine(string(raw)))
	return apierrors.NewGenericServerResponse(code, strings.ToLower(method), gr, name, msg, retryAfter, true)
}

var (
	podsGR    = schema.GroupResource{Resource: "pods"}
	eventsGR  = schema.GroupResource{Resource: "events"}
	nadsGR    = schema.GroupResource{Group: nadv1.SchemeGroupVersion.Group, Resource: "network-attachment-definitions"}
	claimsGR  = schema.GroupResource{Group: resourcev1.SchemeGroupVersion.Group, Resource: "resourceclaims"}
	slicesGR  = schema.GroupResource{Group: resourcev1.SchemeGroupVersion.Group, Resource: "resourceslices"}
	nadPrefix = "/apis/" + nadv1.SchemeGroupVersion.String()
	drPrefix  = "/apis/" + resourcev1.SchemeGroupVersion.String()
)

func namespaced(prefix, namespace, resource, name string) string {
	p := prefix + "/namespaces/" + url.PathEscape(namespace) + "/" + resource
	if name != "" {
		p += "/" + url.PathEscape(name)
	}
	return p
}

func (a *restAPI) GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	out := &corev1.Pod{}
	return out, a.call(ctx, http.MethodGet, namespaced("/api/v1", namespace, "pods", name), nil, "", nil, podsGR, name, out)
}

func (a *restAPI) PatchPodStatus(ctx context.Context, namespace, name string, patch []byte) error {
	return a.call(ctx, http.MethodPatch, namespaced("/api/v1", namespace, "pods", name)+"/status", nil,
		string(k8stypes.MergePatchType), patch, podsGR, name, nil)
}

func (a *restAPI) CreateEvent(ctx context.Context, ev *corev1.Event) error {
	withType := *ev
	withType.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Event"}
	body, err := json.Marshal(&withType)
	if err != nil {
		return err
	}
	return a.call(ctx, http.MethodPost, namespaced("/api/v1", ev.Namespace, "events", ""), nil, "application/json", body, eventsGR, "", nil)
}

func (a *restAPI) GetNAD(ctx context.Context, namespace, name string) (*nadv1.NetworkAttachmentDefinition, error) {
	out := &nadv1.NetworkAttachmentDefinition{}
	return out, a.call(ctx, http.MethodGet, namespaced(nadPrefix, namespace, "network-attachment-definitions", name), nil, "", nil, nadsGR, name, out)
}

func (a *restAPI) GetResourceClaim(ctx context.Context, namespace, name string) (*resourcev1.ResourceClaim, error) {
	out := &resourcev1.ResourceClaim{}
	return out, a.call(ctx, http.MethodGet, namespaced(drPrefix, namespace, "resourceclaims", name), nil, "", nil, claimsGR, name, out)
}

func (a *restAPI) ListResourceSlices(ctx context.Context, fieldSelector string) ([]resourcev1.ResourceSlice, error) {
	out := &resourcev1.ResourceSliceList{}
	err := a.call(ctx, http.MethodGet, drPrefix+"/resourceslices", url.Values{"fieldSelector": {fieldSelector}}, "", nil, slicesGR, "", out)
	return out.Items, err
}
