package ipam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/plexus-cni/plexus/internal/controller"
	"github.com/plexus-cni/plexus/internal/controller/metrics"
	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
	plexusclient "github.com/plexus-cni/plexus/pkg/client/clientset/versioned"
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
	DefaultWorkers     = 16
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
	// Workers confirm and act on allocations concurrently (default
	// DefaultWorkers): each free is a few API requests, and a drained
	// node frees thousands. The client's QPS and burst (Deps.Config) are
	// what bounds their rate; the Kubernetes stores take them over.
	Workers int
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
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
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

// PassKind says what a pass reads and does.
type PassKind string

// The passes: the first, once the caches have synced, reads them and
// repairs indexes; a resync pass lists every store (the one uncached LIST
// of allocations per Resync, in case a cache missed something) and repairs
// indexes; a pass that an event or a recheck time triggered reads the
// caches only.
const (
	StartPass  PassKind = "start"
	ResyncPass PassKind = "resync"
	EventPass  PassKind = "event"
)

// Report summarises one pass.
type Report struct {
	Kind                    PassKind
	Started                 time.Time
	Listed, Freed, Reserved int
	Rebuilt                 []string // spaces whose index was rebuilt
	Errors                  int
	NextRecheck             time.Time
}

// Reclaimer is the leader-only component.
type Reclaimer struct {
	client kubernetes.Interface
	// plexus feeds the IPAllocation caches (Deps.Plexus).
	plexus plexusclient.Interface
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
	return &Reclaimer{client: d.Client, plexus: d.Plexus, cfg: d.Config, log: d.Log.With("component", "ipam"), opts: o,
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
	// namespace holds a Kubernetes store's objects ("" for etcd).
	namespace string
	// cache is the informer store of a Kubernetes store's IPAllocations.
	cache cache.Store
}

func (r *Reclaimer) openStores() ([]namedStore, error) {
	var out []namedStore
	for _, ns := range r.opts.Namespaces {
		ks, err := kubestore.New(r.cfg, kubestore.Options{Namespace: ns, QPS: r.cfg.QPS, Burst: r.cfg.Burst})
		if err != nil {
			return nil, fmt.Errorf("kubernetes store in namespace %s: %w", ns, err)
		}
		ks.Logf = func(f string, a ...any) { r.log.Debug(fmt.Sprintf(f, a...), "namespace", ns) }
		out = append(out, namedStore{name: "kubernetes/" + ns, st: ks, namespace: ns})
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
	world, synced, err := r.startInformers(ctx, stores)
	if err != nil {
		return err
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return ctx.Err()
	}
	r.log.Info("caches synced", "stores", len(stores), "grace", r.opts.Grace, "stickyTTL", r.opts.StickyTTL, "workers", r.opts.Workers)
	pools := newPoolCounts(stores)
	r.metrics.SetPoolSource(pools.read)
	defer r.metrics.SetPoolSource(nil)
	r.loop(ctx, stores, world, pools)
	return ctx.Err()
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
	t := r.opts.Now()
	if a, ok := obj.(*v1.IPAllocation); ok && !a.Spec.Created.IsZero() {
		t = a.Spec.Created.Time
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

// loop runs passes: the start pass, then event passes on signals (one
// MinInterval after the signal) and at recheck times, and a resync pass
// every Resync. It schedules on the wall clock; decisions use Options.Now.
func (r *Reclaimer) loop(ctx context.Context, stores []namedStore, world cacheWorld, pools *poolCounts) {
	kind := StartPass
	var resync, due, recheck time.Time // due: an event pass
	for {
		if w := r.takeWake(); !w.IsZero() {
			recheck = earliest(recheck, r.wallTime(w))
		}
		now := time.Now()
		if !recheck.IsZero() && !recheck.After(now) {
			due, recheck = earliest(due, now), time.Time{}
		}
		switch {
		case kind != "":
		case !resync.After(now):
			kind = ResyncPass
		case !due.IsZero() && !due.After(now):
			kind = EventPass
		}
		if kind != "" {
			rep := r.pass(ctx, stores, world, kind, pools)
			if kind != EventPass {
				resync = time.Now().Add(r.opts.Resync)
			}
			kind, due = "", time.Time{}
			if !rep.NextRecheck.IsZero() {
				recheck = earliest(recheck, r.wallTime(rep.NextRecheck))
			}
			if r.opts.Observe != nil {
				r.opts.Observe(rep)
			}
			continue
		}
		timer := time.NewTimer(earliest(earliest(resync, due), recheck).Sub(now))
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
func (r *Reclaimer) pass(ctx context.Context, stores []namedStore, world cacheWorld, kind PassKind, pools *poolCounts) Report {
	rep := Report{Kind: kind, Started: r.opts.Now()}
	start := time.Now()
	defer func() {
		var err error
		if rep.Errors > 0 {
			err = fmt.Errorf("%d errors", rep.Errors)
		}
		r.metrics.Reconciled("ipam", time.Since(start), err)
	}()
	live := newLiveWorld(ctx, r.client)
	for _, s := range stores {
		if err := r.sweep(ctx, s, kind, world, live, &rep, pools); err != nil {
			rep.Errors++
			r.log.Warn("sweep failed", "store", s.name, "pass", kind, "error", err)
		}
	}
	r.log.Debug("pass done", "pass", kind, "listed", rep.Listed, "freed", rep.Freed, "reserved", rep.Reserved, "errors", rep.Errors,
		"took", time.Since(start))
	return rep
}

// listed is an allocation a pass decides about, with the IPAllocation
// it was read from when it came from a cache (nil otherwise).
type listed struct {
	a   store.Allocation
	obj *v1.IPAllocation
}

// allocations returns what a pass of kind decides about in s: the cache
// of a Kubernetes store, except in a resync pass, which lists the store.
func (r *Reclaimer) allocations(ctx context.Context, s namedStore, kind PassKind) ([]listed, error) {
	if kind == ResyncPass || s.cache == nil {
		all, err := s.st.List(ctx, store.Filter{})
		out := make([]listed, len(all))
		for i, a := range all {
			out[i].a = a
		}
		return out, err
	}
	objs := s.cache.List()
	out := make([]listed, 0, len(objs))
	for _, o := range objs {
		obj, ok := o.(*v1.IPAllocation)
		if !ok {
			continue // the typed informer stores nothing else
		}
		if a, err := kubestore.AllocationOf(obj); err == nil {
			out = append(out, listed{a, obj})
		}
	}
	return out, nil
}

// job is an allocation the caches say to free or reserve.
type job struct {
	listed
	v Verdict
}

// listedFreer frees an IPAllocation as a cache showed it, one read fewer
// than FreeHeld (kubestore.Store.FreeListed).
type listedFreer interface {
	FreeListed(ctx context.Context, obj *v1.IPAllocation) error
}

// sweep decides about every allocation of one store from the caches,
// confirms each decision to act with live reads and acts on those
// confirmed (Workers at a time), and, in start and resync passes, repairs
// over-full indexes.
func (r *Reclaimer) sweep(ctx context.Context, s namedStore, kind PassKind, world, live World, rep *Report, pools *poolCounts) error {
	allocs, err := r.allocations(ctx, s, kind)
	if err != nil {
		return err
	}
	rep.Listed += len(allocs)
	held := map[string]uint64{}
	now := r.opts.Now()
	var jobs []job
	for _, l := range allocs {
		a := l.a
		held[a.Space]++
		v, err := Decide(a, world, now, r.opts.Policy)
		if err != nil {
			rep.Errors++
			r.log.Warn("cannot decide", "address", a.Address, "pod", a.PodNamespace+"/"+a.PodName, "error", err)
			continue
		}
		rep.recheck(v.Recheck)
		if v.Action != Keep {
			jobs = append(jobs, job{l, v})
		}
	}
	var mu sync.Mutex // guards rep and held
	forEach(len(jobs), r.opts.Workers, func(i int) {
		j := jobs[i]
		v, err := confirm(j, live, now, r.opts.Policy)
		if err == nil && v.Action != Keep {
			if err = r.act(ctx, s, j.listed, v); err != nil {
				r.log.Warn("reclaiming failed", "store", s.name, "address", j.a.Address, "space", j.a.Space, "error", err)
			}
		} else if err != nil {
			r.log.Warn("cannot decide", "address", j.a.Address, "pod", j.a.PodNamespace+"/"+j.a.PodName, "error", err)
		}
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
			rep.Errors++
		case v.Action == Free:
			held[j.a.Space]--
			rep.Freed++
		case v.Action == Reserve:
			rep.Reserved++
		default:
			rep.recheck(v.Recheck)
		}
	})
	pools.set(s, held)
	if kind == EventPass {
		return nil
	}
	return r.repairIndexes(ctx, s, held, rep)
}

// recheck keeps the earliest recheck time.
func (rep *Report) recheck(t time.Time) {
	if !t.IsZero() && (rep.NextRecheck.IsZero() || t.Before(rep.NextRecheck)) {
		rep.NextRecheck = t
	}
}

// confirm decides again from the API server what the caches said to do:
// only agreement acts.
func confirm(j job, live World, now time.Time, p Policy) (Verdict, error) {
	lv, err := Decide(j.a, live, now, p)
	if err != nil || lv.Action == j.v.Action || lv.Action == Keep {
		return lv, err
	}
	return Verdict{Action: Keep, Reason: "caches and API server disagree"}, nil
}

// forEach calls f(0..n-1) on at most workers goroutines and waits.
func forEach(n, workers int, f func(int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(n, workers); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}

// act frees or reserves l.
func (r *Reclaimer) act(ctx context.Context, s namedStore, l listed, v Verdict) error {
	a := l.a
	var err error
	lf, cached := s.st.(listedFreer)
	switch {
	case v.Action == Reserve:
		err = store.Reserve(ctx, s.st, a, r.opts.Now().UTC())
	case cached && l.obj != nil:
		err = lf.FreeListed(ctx, l.obj)
	default:
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
