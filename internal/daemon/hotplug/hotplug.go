// Package hotplug is plexusd's hot-plug loop: when the networks annotation
// of a running pod on this node changes, the pod goes into a work queue
// and a worker brings its sandbox in line (plugin.Replug). The queue
// serialises the work per pod (a key is never worked on twice at once),
// retries a failure with exponential backoff, and a later change of the
// annotation supersedes a pending retry: the worker always reads the pod
// as it is now. At start every pod is queued once, so that a hot-plug cut
// short by a restart resumes from the record and the annotation.
package hotplug

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/plexus-cni/plexus/internal/kube"
	"github.com/plexus-cni/plexus/internal/logging"
	"github.com/plexus-cni/plexus/internal/plugin"
	"github.com/plexus-cni/plexus/pkg/netselect"
)

// OptOutAnnotation set to "false" on a pod keeps its networks as they
// were at creation: plexusd ignores changes of its annotation.
const OptOutAnnotation = "plexus.dev/hotplug"

// Replugger is plugin.Plugin's Replug.
type Replugger interface {
	Replug(ctx context.Context, cniDir string, pod *corev1.Pod) (*plugin.Replugged, error)
}

// Recorder counts hot-plug work: op is "add" or "remove" (per interface)
// or "replug" (a failed attempt), result "ok" or "error".
type Recorder interface {
	Hotplug(op, result string, n int)
}

// EventSink publishes a pod's events.
type EventSink interface {
	RecordEvents(ctx context.Context, pod *corev1.Pod, events []kube.Event) error
}

// Loop is the hot-plug queue and its workers.
type Loop struct {
	Replug  Replugger
	CNIDir  string
	Pods    cache.Indexer // this node's pods (plexusd's informer cache)
	Events  EventSink
	Metrics Recorder
	Log     *logging.Logger
	// Timeout bounds one attempt (default 2 minutes).
	Timeout time.Duration

	q workqueue.TypedRateLimitingInterface[string]
	// changed holds the keys queued for a change of the annotation (not
	// only to resume at start).
	changed *sync.Map
}

// New returns a Loop; Handler feeds it and Run works it.
func New(l Loop) *Loop {
	l.q = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Second, 5*time.Minute),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "hotplug"})
	if l.Timeout == 0 {
		l.Timeout = 2 * time.Minute
	}
	l.changed = &sync.Map{}
	return &l
}

// Handler queues the pods whose networks annotation changed.
func (l *Loop) Handler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{UpdateFunc: func(o, n any) {
		old, ok1 := o.(*corev1.Pod)
		pod, ok2 := n.(*corev1.Pod)
		if ok1 && ok2 && old.Annotations[netselect.NetworksAnnotation] != pod.Annotations[netselect.NetworksAnnotation] {
			key := pod.Namespace + "/" + pod.Name
			l.changed.Store(key, true)
			l.q.Add(key)
		}
	}}
}

// Run queues every cached pod once (to resume what a restart cut short),
// then works the queue with workers until ctx ends.
func (l *Loop) Run(ctx context.Context, workers int) {
	defer l.q.ShutDown()
	for _, key := range l.Pods.ListKeys() {
		l.q.Add(key)
	}
	for range workers {
		go func() {
			for l.next(ctx) {
			}
		}()
	}
	<-ctx.Done()
}

func (l *Loop) next(ctx context.Context) bool {
	key, quit := l.q.Get()
	if quit {
		return false
	}
	defer l.q.Done(key)
	_, changed := l.changed.LoadAndDelete(key)
	err := l.sync(ctx, key, changed)
	switch {
	case errors.Is(err, errFinal):
		l.q.Forget(key)
	case err != nil:
		l.changed.Store(key, changed)
		l.q.AddRateLimited(key)
	default:
		l.q.Forget(key)
	}
	return true
}

// errFinal ends the retries of a key.
var errFinal = errors.New("not retried")

// sync brings one pod's sandbox in line with its annotation; changed says
// the annotation changed (the key is not only resumed at start).
func (l *Loop) sync(ctx context.Context, key string, changed bool) error {
	obj, ok, err := l.Pods.GetByKey(key)
	if err != nil || !ok {
		return nil // deleted: the sandbox's DEL tears down
	}
	pod := obj.(*corev1.Pod)
	if pod.DeletionTimestamp != nil || pod.Annotations[OptOutAnnotation] == "false" {
		return nil
	}
	actx, cancel := context.WithTimeout(ctx, l.Timeout)
	defer cancel()
	start := time.Now()
	out, err := l.Replug.Replug(actx, l.CNIDir, pod.DeepCopy())
	if out != nil {
		l.Metrics.Hotplug("add", "ok", len(out.Added))
		l.Metrics.Hotplug("remove", "ok", len(out.Removed))
	}
	if err == nil {
		if out != nil {
			l.Log.Infof("hot-plug of %s: added %v, removed %v in %v", key, out.Added, out.Removed, time.Since(start).Round(time.Millisecond))
		}
		return nil
	}
	if errors.Is(err, plugin.ErrRecordPredatesHotplug) {
		// A pod added before the upgrade: said once, when its annotation
		// changes; nothing to resume at start. Retrying cannot help.
		if !changed {
			return nil
		}
		err = errors.Join(err, errFinal)
	}
	l.Metrics.Hotplug("replug", "error", 1)
	l.Log.Errorf("hot-plug of %s: %v (retried with backoff; a change of the annotation retries at once)", key, err)
	msg := fmt.Sprintf("hot-plug of the networks annotation failed: %v", err)
	if eerr := l.Events.RecordEvents(ctx, pod, []kube.Event{{Type: corev1.EventTypeWarning, Reason: "HotplugFailed", Message: msg}}); eerr != nil {
		err = errors.Join(err, eerr)
	}
	return err
}
