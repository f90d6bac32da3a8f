package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

// poolCIDR is the chaos pool: 254 addresses for at most workers×perWorker
// (100) live sandboxes, so addresses are freed and handed out again all
// the time. Addresses are only data here: nothing configures them.
const poolCIDR = "198.51.100.0/24"

// sandbox is one pod sandbox's attachment, as a runtime sees it.
type sandbox struct {
	id, ns, pod string
	uid         types.UID
	addr        netip.Addr
}

// counters are the run's figures, updated by every goroutine.
type counters struct {
	adds, addOK, dels, killAdd, killDel, lostDel, storeStops, ctlKills, ctlMid, delLeaks, daemonKills atomic.Int64
}

// run is one store's chaos run.
type run struct {
	t       *testing.T
	env     *testbed.Env
	cfg     config
	name    string
	plugin  *plugin
	podNS   string
	backend backend
	checker store.Store // the suite's own client, for the checks
	daemon  *plexusd    // nil: plexus-ipam runs every request itself
	c       counters

	mu          sync.Mutex // guards the fields below
	live        map[string]*sandbox
	byAddr      map[netip.Addr]*sandbox
	runtimeDups int
	undeleted   int
	lastAbandon time.Time

	budget atomic.Int64 // ADDs left to start
	seq    atomic.Int64
}

// backend is the store under test: its plugin configuration, a client for
// the checks, what the reclaimer needs, and how to stop and start it.
type backend interface {
	ipamConf() string
	open(t *testing.T) store.Store
	reclaimerStores(hook func() error) reclaimerStores
	stopStart(down time.Duration) error
}

// newRun prepares a run on the named store; with viaDaemon, plexus-ipam
// hands its requests to a plexusd, which the suite kills and restarts.
func newRun(t *testing.T, env *testbed.Env, cfg config, bin, name string, viaDaemon bool) *run {
	r := &run{t: t, env: env, cfg: cfg, name: name, podNS: env.Namespace(t, "chaos-pods"),
		live: map[string]*sandbox{}, byAddr: map[netip.Addr]*sandbox{}}
	switch name {
	case "kubernetes":
		r.backend = newKubeBackend(t, env)
	case "etcd":
		r.backend = newEtcdBackend(t, env)
	default:
		t.Fatalf("CHAOS_STORES: unknown store %q (kubernetes, etcd)", name)
	}
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"chaos","ipam":{"type":"plexus-ipam","range":%q,"log_level":"error",%s}}`,
		poolCIDR, r.backend.ipamConf())
	r.plugin = &plugin{bin: bin, conf: []byte(conf), node: "chaos-node", locks: t.TempDir()}
	if viaDaemon {
		r.daemon = startPlexusd(t, env, filepath.Join(cfg.logDir, "plexusd.log"), "", nil)
		r.plugin.socket = r.daemon.socket
		r.name += "+plexusd"
	}
	r.checker = r.backend.open(t)
	r.budget.Store(int64(cfg.ops))
	return r
}

// execute runs the workers and the fault injectors, then the final
// reconcile, and returns the figures.
func (r *run) execute() row {
	start := time.Now()
	// work bounds starting new operations; finishing ones (the runtime's
	// DEL retries) gets until cleanup ends.
	work, stopWork := context.WithTimeout(r.t.Context(), r.cfg.duration)
	defer stopWork()
	cleanup, stopCleanup := context.WithTimeout(r.t.Context(), r.cfg.duration+10*time.Minute)
	defer stopCleanup()
	faults, stopFaults := context.WithCancel(cleanup)
	var fw sync.WaitGroup
	fw.Add(2)
	go func() { defer fw.Done(); r.storeFaults(faults) }()
	go func() { defer fw.Done(); r.controllerFaults(faults) }()
	if r.daemon != nil {
		fw.Add(1)
		go func() {
			defer fw.Done()
			if err := r.daemon.faults(faults, 3, &r.c.daemonKills); err != nil {
				r.t.Errorf("%s: %v", r.name, err)
			}
		}()
	}

	var ww sync.WaitGroup
	for w := 0; w < r.cfg.workers; w++ {
		ww.Add(1)
		go func() { defer ww.Done(); r.worker(work, cleanup, w) }()
	}
	ww.Wait()
	stopFaults()
	fw.Wait()
	r.t.Logf("%s: workers done after %s; final reconcile", r.name, time.Since(start).Round(time.Second))
	r.reconcile(cleanup)
	res := r.check(cleanup)
	res.wall = time.Since(start)
	return res
}

// worker keeps up to perWorker live sandboxes, adding while the budget
// lasts and deleting at random.
func (r *run) worker(work, cleanup context.Context, w int) {
	rnd := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
	var mine []*sandbox
	for work.Err() == nil {
		if len(mine) < r.cfg.perWorker && (len(mine) == 0 || rnd.Float64() < 0.55) {
			sb := r.add(work, cleanup, w, rnd)
			if sb == nil && r.budget.Load() <= 0 {
				return
			}
			if sb != nil {
				mine = append(mine, sb)
			}
			continue
		}
		i := rnd.IntN(len(mine))
		sb := mine[i]
		mine = append(mine[:i], mine[i+1:]...)
		r.remove(cleanup, rnd, sb)
	}
}

// add creates a pod and ADDs a sandbox for it, killing the plugin at
// random. After a failed ADD it runs the runtime's DEL and, as a kubelet
// does, tries a new sandbox for the same pod, which lives on: anything
// the DEL left behind stays held for a living pod, where the reclaimer
// rightly keeps it. Each ADD takes one from the budget; it returns the
// live sandbox, or nil when the budget or the time is up.
func (r *run) add(work, cleanup context.Context, w int, rnd *rand.Rand) *sandbox {
	if r.budget.Add(-1) < 0 {
		return nil
	}
	pod := &sandbox{ns: r.podNS, pod: fmt.Sprintf("p%d-%d", w, r.seq.Add(1))}
	if !r.retry(work, func() error { return r.createPod(work, pod) }) {
		return nil
	}
	for attempt := 0; ; attempt++ {
		if attempt > 0 && (work.Err() != nil || r.budget.Add(-1) < 0) {
			r.retry(cleanup, func() error { return r.deletePod(cleanup, pod) })
			return nil
		}
		sb := *pod
		sb.id = fmt.Sprintf("chaos%s%t%02d%08d", r.name[:4], r.daemon != nil, w, r.seq.Add(1))
		var kill time.Duration
		if rnd.Float64() < r.cfg.pKillAdd {
			kill = time.Duration(rnd.Int64N(int64(r.plugin.typicalAdd())*13/10) + 1)
		}
		o := r.plugin.call(cleanup, "ADD", &sb, kill)
		r.c.adds.Add(1)
		if o.killed {
			r.c.killAdd.Add(1)
		}
		if o.err == nil {
			r.c.addOK.Add(1)
			sb.addr = o.addr
			r.becomeLive(&sb)
			return &sb
		}
		r.del(cleanup, rnd, &sb)
	}
}

// remove tears a live sandbox down: usually the runtime's DEL, sometimes
// no DEL at all (the pod is deleted; the reclaimer must free it).
func (r *run) remove(cleanup context.Context, rnd *rand.Rand, sb *sandbox) {
	r.leaveLive(sb)
	lost := rnd.Float64() < r.cfg.pLostDel
	if !lost {
		r.del(cleanup, rnd, sb)
	}
	r.retry(cleanup, func() error { return r.deletePod(cleanup, sb) })
	if lost {
		r.c.lostDel.Add(1)
		r.mu.Lock()
		r.lastAbandon = time.Now()
		r.mu.Unlock()
	}
}

// del is the runtime's DEL: retried until it succeeds, killed at random.
func (r *run) del(ctx context.Context, rnd *rand.Rand, sb *sandbox) {
	ok := r.retry(ctx, func() error {
		var kill time.Duration
		if rnd.Float64() < r.cfg.pKillDel {
			kill = time.Duration(rnd.Int64N(int64(r.plugin.typicalAdd())) + 1)
		}
		o := r.plugin.call(ctx, "DEL", sb, kill)
		r.c.dels.Add(1)
		if o.killed {
			r.c.killDel.Add(1)
		}
		return o.err
	})
	if !ok {
		r.mu.Lock()
		r.undeleted++
		r.mu.Unlock()
		r.t.Logf("DEL of %s never succeeded", sb.id)
		return
	}
	r.checkDel(ctx, sb)
}

// checkDel counts allocations still held by sb right after its DEL
// succeeded: nothing can allocate for sb.id any more, so any is a leak,
// whatever the reclaimer does about it later.
func (r *run) checkDel(ctx context.Context, sb *sandbox) {
	var left []store.Allocation
	r.retry(ctx, func() error {
		var err error
		left, err = r.checker.List(ctx, store.Filter{ContainerID: sb.id})
		return err
	})
	for _, a := range left {
		r.c.delLeaks.Add(1)
		r.t.Errorf("%s: DEL LEAK: %s still held by %s after its DEL succeeded", r.name, a.Address, sb.id)
	}
}

// retry calls f until it succeeds (true) or ctx ends (false).
func (r *run) retry(ctx context.Context, f func() error) bool { return retryUntil(ctx, f) }

// retryUntil calls f until it succeeds (true) or ctx ends (false),
// backing off from 100ms to 2s.
func retryUntil(ctx context.Context, f func() error) bool {
	wait := 100 * time.Millisecond
	for {
		if f() == nil {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

func (r *run) becomeLive(sb *sandbox) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if other, dup := r.byAddr[sb.addr]; dup {
		r.runtimeDups++
		r.t.Errorf("DUPLICATE: %s handed to %s while %s holds it", sb.addr, sb.id, other.id)
	}
	r.byAddr[sb.addr] = sb
	r.live[sb.id] = sb
}

func (r *run) leaveLive(sb *sandbox) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.live, sb.id)
	if r.byAddr[sb.addr] == sb {
		delete(r.byAddr, sb.addr)
	}
}

func (r *run) createPod(ctx context.Context, sb *sandbox) error {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: sb.pod, Namespace: sb.ns},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "pause"}}}}
	got, err := r.env.Client.CoreV1().Pods(sb.ns).Create(ctx, pod, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) { // created, but the reply was lost
		got, err = r.env.Client.CoreV1().Pods(sb.ns).Get(ctx, sb.pod, metav1.GetOptions{})
	}
	if err != nil {
		return err
	}
	sb.uid = got.UID
	return nil
}

func (r *run) deletePod(ctx context.Context, sb *sandbox) error {
	zero := int64(0)
	err := r.env.Client.CoreV1().Pods(sb.ns).Delete(ctx, sb.pod, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
