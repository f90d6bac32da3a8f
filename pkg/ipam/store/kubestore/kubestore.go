// Package kubestore keeps plexus-ipam allocations in the Kubernetes API as
// plexus.dev/v1alpha1 objects: an IPAllocation per allocated address (the
// truth, created only if absent), an IPAttachment per holder key, and an
// IPSpace per address space holding the index. There is no lock and no
// leader election: the API server's create-if-absent and resourceVersion
// checks are the only synchronisation.
package kubestore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

// Store is a store.Store on the Kubernetes API.
type Store struct {
	rc      rest.Interface
	ns      string
	backoff store.Backoff
	// Logf receives notes about hint maintenance (nil: dropped).
	Logf func(format string, args ...any)

	requests, claimConflicts, indexConflicts atomic.Int64
	heat                                     store.Heat
	// slot is this client's place in the spread of claims that lost a
	// race (store.Pick).
	slot uint64

	spacesMu sync.Mutex
	spaces   map[string]*spaceState // see local.go
}

// Stats returns what this client did so far.
func (s *Store) Stats() store.Stats {
	return store.Stats{Requests: s.requests.Load(), ClaimConflicts: s.claimConflicts.Load(), IndexConflicts: s.indexConflicts.Load()}
}

var _ store.Store = (*Store)(nil)

// Options tune the store.
type Options struct {
	// Namespace holds the objects (required).
	Namespace string
	// Timeout bounds each request (default 30s).
	Timeout time.Duration
	// QPS and Burst bound the client's request rate (default 100 and 200:
	// a plugin makes a handful of requests; plexus-controller passes its
	// --kube-api-qps and --kube-api-burst).
	QPS   float32
	Burst int
}

// NewFromKubeconfig connects with a kubeconfig file. When opts.Namespace is
// empty, the kubeconfig context's namespace is used, else defaultNS.
func NewFromKubeconfig(path string, opts Options, defaultNS string) (*Store, error) {
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: path}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, kubeconfigError(path, err)
	}
	if opts.Namespace == "" {
		if ns, explicit, err := cc.Namespace(); err == nil && explicit && ns != "" {
			opts.Namespace = ns
		} else {
			opts.Namespace = defaultNS
		}
	}
	return New(cfg, opts)
}

// kubeconfigError names the file but never quotes its content (it holds
// credentials).
func kubeconfigError(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("kubernetes.kubeconfig %q: %w", path, pe)
	}
	return fmt.Errorf("kubernetes.kubeconfig %q: not a usable kubeconfig (%T)", path, err)
}

// New connects with a REST config.
func New(cfg *rest.Config, opts Options) (*Store, error) {
	if opts.Namespace == "" {
		return nil, errors.New("kubestore: namespace is required")
	}
	cfg = rest.CopyConfig(cfg)
	scheme := runtime.NewScheme()
	if err := v1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("registering %s types: %w", v1.Group, err)
	}
	gv := v1.SchemeGroupVersion
	cfg.GroupVersion = &gv
	cfg.APIPath = "/apis"
	cfg.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	cfg.ContentType = runtime.ContentTypeJSON
	cfg.QPS, cfg.Burst = 100, 200
	if opts.QPS > 0 {
		cfg.QPS = opts.QPS
	}
	if opts.Burst > 0 {
		cfg.Burst = opts.Burst
	}
	cfg.Timeout = opts.Timeout
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "plexus-ipam"
	}
	rc, err := rest.RESTClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client for %s: %w", cfg.Host, err)
	}
	return &Store{rc: rc, ns: opts.Namespace, backoff: store.DefaultBackoff(), slot: store.NewSlot()}, nil
}

func (s *Store) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

// Namespace returns the namespace holding the objects.
func (s *Store) Namespace() string { return s.ns }

// QPS is the client's request rate limit (Options.QPS).
func (s *Store) QPS() float32 { return s.rc.GetRateLimiter().QPS() }

// Close implements store.Store.
func (s *Store) Close() error { return nil }

// Ping implements store.Store: it reads the IPSpace list (one item), which
// needs the CRDs installed and the RBAC to read them.
func (s *Store) Ping(ctx context.Context) error {
	s.requests.Add(1)
	var l v1.IPSpaceList
	err := s.rc.Get().Namespace(s.ns).Resource(v1.ResourceIPSpaces).
		VersionedParams(&metav1.ListOptions{Limit: 1}, metav1.ParameterCodec).Do(ctx).Into(&l)
	return classify(err, "listing ipspaces")
}

// classify wraps transient failures (network errors, timeouts, 429, 5xx,
// unresolved conflicts) with store.ErrUnavailable; other API errors keep
// their text. what says what was being done.
func classify(err error, what string) error {
	if err == nil {
		return nil
	}
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		code := int(st.Status().Code)
		if code == http.StatusTooManyRequests || code >= 500 || code == http.StatusConflict ||
			apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) {
			return fmt.Errorf("%s: %w: %w", what, store.ErrUnavailable, err)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %w: %w", what, store.ErrUnavailable, err)
}
