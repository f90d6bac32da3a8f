// Package kube is the plugin's narrow view of the Kubernetes API: read a pod,
// read a NetworkAttachmentDefinition, write the network-status annotation
// through the pods/status subresource, and record events. The one-shot
// plugin uses it with live requests (NewFromKubeconfig: plain HTTP requests
// in JSON, so that the binary the runtime execs on every pod links neither
// client-go nor gRPC and initialises little more than the types it reads);
// plexusd backs the reads with informers and answers API with its
// clientsets (package kubecs).
package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/plexus-cni/plexus/pkg/nad"
	"github.com/plexus-cni/plexus/pkg/netselect"
)

// Client talks to the API server.
type Client struct {
	api     API
	confDir string
	// Component names the event source.
	Component string
}

// Options tune the client built from a kubeconfig.
type Options struct {
	// Timeout bounds each request (default 30s: geo-distributed control
	// planes need more than Multus's 50-250 ms).
	Timeout time.Duration
	// ConfDir is searched for NADs with an empty spec.
	ConfDir string
}

// NewFromKubeconfig builds a client from a kubeconfig file
// (LoadKubeconfig).
func NewFromKubeconfig(path string, opts Options) (*Client, error) {
	cfg, err := LoadKubeconfig(path)
	if err != nil {
		return nil, err
	}
	return NewFromConfig(cfg, opts)
}

// NewFromConfig builds a client from a Config. Its Timeout bounds every
// request (the client makes requests only, never a watch).
func NewFromConfig(cfg *Config, opts Options) (*Client, error) {
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	api, err := newRESTAPI(cfg, timeout)
	if err != nil {
		return nil, err
	}
	return New(api, opts.ConfDir), nil
}

// New returns a client that makes its requests through api; confDir is
// searched for NADs with an empty spec.
func New(api API, confDir string) *Client {
	return &Client{api: api, confDir: confDir, Component: "plexus"}
}

func firstLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	if len(s) > 300 {
		return s[:300]
	}
	return s
}

// GetPod reads the pod.
func (c *Client) GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	pod, err := c.api.GetPod(ctx, namespace, name)
	if err != nil {
		return nil, fmt.Errorf("get pod %s/%s: %w", namespace, name, err)
	}
	return pod, nil
}

// NAD reads a NetworkAttachmentDefinition and resolves its delegate config.
// It implements plan.Resolver.
func (c *Client) NAD(ctx context.Context, namespace, name string) (*nad.Delegate, error) {
	obj, err := c.api.GetNAD(ctx, namespace, name)
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("NetworkAttachmentDefinition %s/%s: %w", namespace, name, nad.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get NetworkAttachmentDefinition %s/%s: %w", namespace, name, err)
	}
	return nad.FromNAD(obj, c.confDir)
}

// SetNetworkStatus writes the network-status annotation with a merge patch
// on pods/status: only that key changes, so concurrent writers of other
// fields are never overwritten. Conflicts and transient errors are retried;
// a pod that is gone is not an error (its sandbox is being torn down).
func (c *Client) SetNetworkStatus(ctx context.Context, namespace, name, value string) error {
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{netselect.NetworkStatusAnnotation: value}},
	})
	if err != nil {
		return err
	}
	backoff := wait.Backoff{Duration: 50 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 6}
	var lastErr error
	err = wait.ExponentialBackoffWithContext(ctx, backoff, func(ctx context.Context) (bool, error) {
		lastErr = c.api.PatchPodStatus(ctx, namespace, name, patch)
		switch {
		case lastErr == nil, apierrors.IsNotFound(lastErr):
			return true, nil
		case retriable(lastErr):
			return false, nil
		default:
			return false, lastErr
		}
	})
	if err != nil {
		if lastErr != nil && !errors.Is(err, lastErr) {
			// Retries ran out: the API's last answer says why.
			err = fmt.Errorf("%w (last error: %w)", err, lastErr)
		}
		return fmt.Errorf("write %s on pod %s/%s: %w", netselect.NetworkStatusAnnotation, namespace, name, err)
	}
	return nil
}

func retriable(err error) bool {
	return apierrors.IsConflict(err) || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) ||
		apierrors.IsTooManyRequests(err) || apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err)
}

// Event is one event to record on a pod.
type Event struct {
	Type    string // corev1.EventTypeNormal or Warning
	Reason  string
	Message string
}

// RecordEvents creates the events concurrently; failures are returned joined
// (events are informational: callers log them and go on).
func (c *Client) RecordEvents(ctx context.Context, pod *corev1.Pod, events []Event) error {
	errs := make([]error, len(events))
	done := make(chan struct{}, len(events))
	now := metav1.NewTime(time.Now())
	for i, e := range events {
		go func() {
			defer func() { done <- struct{}{} }()
			ev := &corev1.Event{
				ObjectMeta: metav1.ObjectMeta{GenerateName: pod.Name + ".", Namespace: pod.Namespace},
				InvolvedObject: corev1.ObjectReference{
					Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name,
					UID: pod.UID, ResourceVersion: pod.ResourceVersion,
				},
				Type: e.Type, Reason: e.Reason, Message: e.Message,
				Source:         corev1.EventSource{Component: c.Component, Host: pod.Spec.NodeName},
				FirstTimestamp: now, LastTimestamp: now, Count: 1,
				ReportingController: "plexus.dev/plexus", ReportingInstance: pod.Spec.NodeName,
			}
			errs[i] = c.api.CreateEvent(ctx, ev)
		}()
	}
	for range events {
		<-done
	}
	return errors.Join(errs...)
}
