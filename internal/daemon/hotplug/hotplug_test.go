package hotplug

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/plexus-cni/plexus/internal/kube"
	"github.com/plexus-cni/plexus/internal/logging"
	"github.com/plexus-cni/plexus/internal/plugin"
	"github.com/plexus-cni/plexus/pkg/netselect"
)

type fakeWorld struct {
	mu      sync.Mutex
	calls   []string // the annotation each Replug saw
	fail    map[string]error
	events  []kube.Event
	metrics map[string]int
	called  chan struct{}
}

func (w *fakeWorld) Replug(_ context.Context, _ string, pod *corev1.Pod) (*plugin.Replugged, error) {
	w.mu.Lock()
	defer func() { w.mu.Unlock(); w.called <- struct{}{} }()
	nets := pod.Annotations[netselect.NetworksAnnotation]
	w.calls = append(w.calls, nets)
	if err := w.fail[nets]; err != nil {
		return nil, err
	}
	return &plugin.Replugged{Added: []string{"net2 (ns/b)"}}, nil
}

func (w *fakeWorld) RecordEvents(_ context.Context, _ *corev1.Pod, ev []kube.Event) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.events = append(w.events, ev...)
	return nil
}

func (w *fakeWorld) Hotplug(op, result string, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.metrics[op+"/"+result] += n
}

func pod(nets string, extra map[string]string) *corev1.Pod {
	a := map[string]string{netselect.NetworksAnnotation: nets}
	for k, v := range extra {
		a[k] = v
	}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "u", Annotations: a}}
}

func (w *fakeWorld) wait(t *testing.T) {
	t.Helper()
	select {
	case <-w.called:
	case <-time.After(30 * time.Second):
		t.Fatal("no Replug")
	}
}

// A changed annotation is hot-plugged; a failure becomes a warning event
// and a retry; a pod that opts out, or whose annotation did not change,
// is left alone.
func TestLoopQueuesChangesAndRetriesFailures(t *testing.T) {
	w := &fakeWorld{fail: map[string]error{"a,bad": errors.New(`network ns/bad: not found`)}, metrics: map[string]int{}, called: make(chan struct{}, 10)}
	pods := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	l := New(Loop{Replug: w, Pods: pods, Events: w, Metrics: w, Log: logging.New(logging.Options{})})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Run(ctx, 1) // an empty cache: nothing to resume

	old, cur := pod("a", nil), pod("a,b", nil)
	_ = pods.Add(cur)
	l.Handler().OnUpdate(old, cur)
	w.wait(t)

	// Another change of anything else: not queued.
	l.Handler().OnUpdate(cur, cur)
	// A bad change: an event, then retried with backoff (1 s first).
	bad := pod("a,bad", nil)
	_ = pods.Update(bad)
	l.Handler().OnUpdate(cur, bad)
	w.wait(t)
	w.wait(t)
	// Fixed: the next change supersedes the retry.
	fixed := pod("a,b2", nil)
	_ = pods.Update(fixed)
	l.Handler().OnUpdate(bad, fixed)
	w.wait(t)
	// Opted out: not hot-plugged.
	out := pod("a", map[string]string{OptOutAnnotation: "false"})
	_ = pods.Update(out)
	l.Handler().OnUpdate(fixed, out)
	time.Sleep(200 * time.Millisecond)

	w.mu.Lock()
	defer w.mu.Unlock()
	// A retry still scheduled for the failure may fire later: it reads the
	// pod as it is now, never the superseded annotation.
	want := []string{"a,b", "a,bad", "a,bad", "a,b2"}
	if len(w.calls) < len(want) {
		t.Fatalf("Replug saw %v, want %v", w.calls, want)
	}
	for i := range w.calls {
		if i < len(want) && w.calls[i] != want[i] || i >= len(want) && w.calls[i] != "a,b2" {
			t.Fatalf("Replug saw %v, want %v", w.calls, want)
		}
	}
	if len(w.events) != 2 || w.events[0].Reason != "HotplugFailed" || w.events[0].Type != corev1.EventTypeWarning {
		t.Fatalf("events %+v, want two HotplugFailed warnings", w.events)
	}
	if w.metrics["add/ok"] != 2 || w.metrics["replug/error"] != 2 {
		t.Fatalf("metrics %v", w.metrics)
	}
}

// A pod added by a plexus without hot-plug: resumed at start it is left
// alone; when its annotation changes, one warning says why, no retries.
func TestLoopRecordWithoutHotplug(t *testing.T) {
	legacy := fmt.Errorf("sandbox x: %w", plugin.ErrRecordPredatesHotplug)
	w := &fakeWorld{fail: map[string]error{"a": legacy, "a,b": legacy}, metrics: map[string]int{}, called: make(chan struct{}, 10)}
	pods := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	_ = pods.Add(pod("a", nil))
	l := New(Loop{Replug: w, Pods: pods, Events: w, Metrics: w, Log: logging.New(logging.Options{})})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Run(ctx, 1)
	w.wait(t) // resumed at start
	changed := pod("a,b", nil)
	_ = pods.Update(changed)
	l.Handler().OnUpdate(pod("a", nil), changed)
	w.wait(t)
	time.Sleep(1500 * time.Millisecond) // past the first backoff step
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.calls) != 2 {
		t.Fatalf("Replug calls %v, want the resume and the change, no retry", w.calls)
	}
	if len(w.events) != 1 || !strings.Contains(w.events[0].Message, "without hot-plug") {
		t.Fatalf("events %+v, want one warning naming the old record", w.events)
	}
}
