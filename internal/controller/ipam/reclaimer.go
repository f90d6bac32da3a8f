package ipam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/plexus-cni/plexus/internal/controller"
	"github.com/plexus-cni/plexus/internal/controller/metrics"
	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
	"github.com/plexus-cni/plexus/pkg/ipam/store/etcdstore"
	"github.com/plexus-cni/plexus/pkg/ipam/store/kubestore"
)

// Defaults of Options.
const (
	DefaultGrace       = 2 * time.Minute
	DefaultStickyTTL   = 24 * time.Hour
	DefaultResync      = 5 * time.Minute
	DefaultMinInterval = time.Second
)

// Options configure the reclaimer.
type Options struct {
	// Namespaces hold Kubernetes-store allocations (kubernetes.namespace
	// of the networks); empty with Etcd nil means kube-system.
	Namespaces []string
	// Etcd, when set, reclaims the etcd store too.
	Etcd *etcdstore.Options
	Policy
	// Resync is the period of the full pass (besides the one at start and
	// those that events trigger).
	Resync time.Duration
	// MinInterval spaces event-triggered passes.
	MinInterval time.Duration
	// Now is the clock of decisions (default time.Now).
	Now func() time.Time
	// Observe, when set, receives each pass's report.
	Observe func(Report)
}

func (o *Options) defaults() {
	if len(o.Namespaces) == 0 && o.Etcd == nil {
		o.Namespaces = []string{"kube-system"}
	}
	o.Grace = orDefault(o.Grace, DefaultGrace)
	o.StickyTTL = orDefault(o.StickyTTL, DefaultStickyTTL)
	o.Resync = orDefault(o.Resync, DefaultResync)
	o.MinInterval = orDefault(o.MinInterval, DefaultMinInterval)
	if o.Now == nil {
		o.Now = time.Now
	}
}

func orDefault(v, def time.Duration) time.Duration {
	if v <= 0 {
		return def
	}
	return v
}

// Report summarises one pass.
type Report struct {
	Started                 time.Time
	Listed, Freed, Reserved int
	Rebuilt                 []string // spaces whose index was rebuilt
	Errors                  int
	NextRecheck             time.Time
}

// Reclaimer is the leader-only component.
type Reclaimer struct {
	client kubernetes.Interface
	dyn    dynamic.Interface
	cfg    *rest.Config
	log    *slog.Logger
	opts   Options
	// metrics records passes and frees (nil: none).
	metrics *metrics.Metrics

	signal chan struct{} // buffered 1: something changed
	mu     sync.Mutex    // guards wakeAt
	wakeAt time.Time     // earliest recheck an informer asked for
}

var _ controller.Component = (*Reclaimer)(nil)

// New returns the reclaimer.
func New(d controller.Deps, o Options) *Reclaimer {
	o.defaults()
	return &Reclaimer{client: d.Client, dyn: d.Dynamic, cfg: d.Config, log: d.Log.With("component", "ipam"), opts: o,
		metrics: d.Metrics, signal: make(chan struct{}, 1)}
}

// Name implements controller.Component.
func (r *Reclaimer) Name() string { return "ipam" }

// LeaderOnly implements controller.Component.
func (r *Reclaimer) LeaderOnly() bool { return true }

// namedStore is one store the reclaimer sweeps.
type namedStore struct {
	name string
	st   store.Store
}

func (r *Reclaimer) openStores() ([]namedStore, error) {
	var out []namedStore
	for _, ns := range r.opts.Namespaces {
		ks, err := kubestore.New(r.cfg, kubestore.Options{Namespace: ns})
		if err != nil {
			return nil, fmt.Errorf("kubernetes store in namespace %s: %w", ns, err)
		}
		ks.Logf = func(f string, a ...any) { r.log.Debug(fmt.Sprintf(f, a...), "namespace", ns) }
		out = append(out, namedStore{name: "kubernetes/" + ns, st: ks})
	}
	if r.opts.Etcd != nil {
		es, err := etcdstore.New(*r.opts.Etcd)
		if err != nil {
			return nil, err
		}
		out = append(out, namedStore{name: "etcd", st: es})
	}
	return out, nil
}

// Run watches pods, nodes, StatefulSets and the allocation objects, and
// sweeps the stores: at start, when something changed, when a grace
// period or TTL ends, and every Resync.
func (r *Reclaimer) Run(ctx context.Context) error {
	stores, err := r.openStores()
	if err != nil {
		return err
	}
	defer func() {
		for _, s := range stores {
			s.st.Close()
		}
	}()
	world, synced, err := r.startInformers(ctx)
	if err != nil {
		return err
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return ctx.Err()
	}
	r.log.Info("caches synced", "stores", len(stores), "grace", r.opts.Grace, "stickyTTL", r.opts.StickyTTL)
	r.loop(ctx, stores, world)
	return ctx.Err()
}

func (r *Reclaimer) startInformers(ctx context.Context) (cacheWorld, []cache.InformerSynced, error) {
	f := informers.NewSharedInformerFactory(r.client, 0)
	pods, nodes, sets := f.Core().V1().Pods().Informer(), f.Core().V1().Nodes().Informer(), f.Apps().V1().StatefulSets().Informer()
	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{pods, cache.ResourceEventHandlerFuncs{DeleteFunc: r.poke, UpdateFunc: func(_, o any) {
			if p, ok := o.(*corev1.Pod); ok && terminal(p) {
				r.poke(o)
			}
		}}},
		{nodes, cache.ResourceEventHandlerFuncs{DeleteFunc: r.poke}},
		{sets, cache.ResourceEventHandlerFuncs{DeleteFunc: r.poke, UpdateFunc: func(_, o any) { r.poke(o) }}},
	}
	synced := []cache.InformerSynced{pods.HasSynced, nodes.HasSynced, sets.HasSynced}
	for _, ns := range r.opts.Namespaces {
		df := dynamicinformer.NewFilteredDynamicSharedInformerFactory(r.dyn, 0, ns, nil)
		inf := df.ForResource(schema.GroupVersionResource{Group: v1.Group, Version: v1.Version, Resource: v1.ResourceIPAllocations}).Informer()
		handlers = append(handlers, struct {
			inf cache.SharedIndexInformer
			h   cache.ResourceEventHandler
		}{inf, cache.ResourceEventHandlerFuncs{AddFunc: r.allocationAdded, UpdateFunc: func(_, o any) { r.allocationAdded(o) }}})
		synced = append(synced, inf.HasSynced)
		df.Start(ctx.Done())
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			return cacheWorld{}, nil, fmt.Errorf("ipam informer handler: %w", err)
		}
	}
	f.Start(ctx.Done())
	return cacheWorld{pods: pods.GetStore(), nodes: nodes.GetStore(), sets: sets.GetStore()}, synced, nil
}

// poke asks for a pass soon.
func (r *Reclaimer) poke(any) {
	select {
	case r.signal <- struct{}{}:
	default:
	}
}

// allocationAdded asks for a pass when the new allocation's grace period
// ends: an ADD whose pod never shows up leaves such an allocation.
func (r *Reclaimer) allocationAdded(obj any) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	created, _, _ := unstructured.NestedString(u.Object, "spec", "created")
	t, err := time.Parse(time.RFC3339, created)
	if err != nil {
		t = r.opts.Now()
	}
	r.wake(t.Add(r.opts.Grace))
}

// wake asks for a pass at t.
func (r *Reclaimer) wake(t time.Time) {
	r.mu.Lock()
	if r.wakeAt.IsZero() || t.Before(r.wakeAt) {
		r.wakeAt = t
	}
	r.mu.Unlock()
	r.poke(nil)
}

// takeWake returns and clears the requested recheck time.
func (r *Reclaimer) takeWake() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.wakeAt
	r.wakeAt = time.Time{}
	return t
}

// loop runs passes: one at start, then on signals (at most one per
// MinInterval), at recheck times, and every Resync. It schedules on the
// wall clock; decisions use Options.Now.
func (r *Reclaimer) loop(ctx context.Context, stores []namedStore, world cacheWorld) {
	due := time.Now()
	var recheck time.Time
	for {
		if w := r.takeWake(); !w.IsZero() {
			recheck = earliest(recheck, r.wallTime(w))
		}
		now := time.Now()
		if !recheck.IsZero() && !recheck.After(now) {
			due, recheck = now, time.Time{}
		}
		if !due.After(now) {
			rep := r.pass(ctx, stores, world)
			if !rep.NextRecheck.IsZero() {
				recheck = earliest(recheck, r.wallTime(rep.NextRecheck))
			}
			due = time.Now().Add(r.opts.Resync)
			if r.opts.Observe != nil {
				r.opts.Observe(rep)
			}
			continue
		}
		timer := time.NewTimer(earliest(due, recheck).Sub(now))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-r.signal:
			due = earliest(due, time.Now().Add(r.opts.MinInterval))
		case <-timer.C:
		}
		timer.Stop()
	}
}

// wallTime converts a time of the decision clock to the wall clock.
func (r *Reclaimer) wallTime(t time.Time) time.Time { return time.Now().Add(t.Sub(r.opts.Now())) }

// earliest returns the earlier of a and b, a zero time counting as never.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

// pass sweeps every store once.
func (r *Reclaimer) pass(ctx context.Context, stores []namedStore, world cacheWorld) Report {
	rep := Report{Started: r.opts.Now()}
	start := time.Now()
	defer func() {
		var err error
		if rep.Errors > 0 {
			err = fmt.Errorf("%d errors", rep.Errors)
		}
		r.metrics.Reconciled("ipam", time.Since(start), err)
	}()
	live := liveWorld{ctx: ctx, c: r.client}
	for _, s := range stores {
		if err := r.sweep(ctx, s, world, live, &rep); err != nil {
			rep.Errors++
			r.log.Warn("sweep failed", "store", s.name, "error", err)
		}
	}
	r.log.Debug("pass done", "listed", rep.Listed, "freed", rep.Freed, "reserved", rep.Reserved, "errors", rep.Errors)
	return rep
}

// sweep decides about every allocation of one store, acts on the
// decisions the live reads confirm, and repairs over-full indexes.
func (r *Reclaimer) sweep(ctx context.Context, s namedStore, world, live World, rep *Report) error {
	allocs, err := s.st.List(ctx, store.Filter{})
	if err != nil {
		return err
	}
	rep.Listed += len(allocs)
	held := map[string]uint64{}
	for _, a := range allocs {
		held[a.Space]++
		v := r.confirm(a, world, live, rep)
		if v.Action == Keep {
			continue
		}
		if err := r.act(ctx, s, a, v); err != nil {
			rep.Errors++
			r.log.Warn("reclaiming failed", "store", s.name, "address", a.Address, "space", a.Space, "error", err)
			continue
		}
		if v.Action == Free {
			held[a.Space]--
			rep.Freed++
		} else {
			rep.Reserved++
		}
	}
	return r.repairIndexes(ctx, s, held, rep)
}

// confirm decides from the caches and, when that says free or reserve,
// again from the API server; only agreement acts.
func (r *Reclaimer) confirm(a store.Allocation, world, live World, rep *Report) Verdict {
	now := r.opts.Now()
	v, err := Decide(a, world, now, r.opts.Policy)
	if err == nil && v.Action != Keep {
		var lv Verdict
		if lv, err = Decide(a, live, now, r.opts.Policy); err == nil && lv.Action != v.Action {
			v = lv
			if v.Action != Keep {
				v = Verdict{Action: Keep, Reason: "caches and API server disagree"}
			}
		}
	}
	if err != nil {
		rep.Errors++
		r.log.Warn("cannot decide", "address", a.Address, "pod", a.PodNamespace+"/"+a.PodName, "error", err)
		return Verdict{Action: Keep}
	}
	if !v.Recheck.IsZero() && (rep.NextRecheck.IsZero() || v.Recheck.Before(rep.NextRecheck)) {
		rep.NextRecheck = v.Recheck
	}
	return v
}

func (r *Reclaimer) act(ctx context.Context, s namedStore, a store.Allocation, v Verdict) error {
	var err error
	if v.Action == Reserve {
		err = store.Reserve(ctx, s.st, a, r.opts.Now().UTC())
	} else {
		err = s.st.FreeHeld(ctx, a)
	}
	if err == nil {
		r.metrics.Reclaimed(v.Action.String())
		r.log.Info("reclaimed", "action", v.Action.String(), "reason", v.Reason, "store", s.name, "space", a.Space,
			"address", a.Address, "pod", a.PodNamespace+"/"+a.PodName, "podUID", a.PodUID, "container", a.ContainerID, "node", a.Node)
	}
	return err
}

// repairIndexes rebuilds the index of a space that marks more addresses
// than the store holds (addresses lost to allocation until a rebuild).
// Allocations made during the pass can make the count look low, which
// costs a needless rebuild at worst.
func (r *Reclaimer) repairIndexes(ctx context.Context, s namedStore, held map[string]uint64, rep *Report) error {
	spaces, err := s.st.Spaces(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, sp := range spaces {
		if sp.Allocated <= held[sp.Space] {
			continue
		}
		if err := s.st.RebuildIndex(ctx, sp.Space); err != nil {
			errs = append(errs, fmt.Errorf("rebuilding the index of %q: %w", sp.Space, err))
			continue
		}
		rep.Rebuilt = append(rep.Rebuilt, sp.Space)
		r.log.Info("index rebuilt", "store", s.name, "space", sp.Space, "indexed", sp.Allocated, "held", held[sp.Space])
	}
	return errors.Join(errs...)
}
