package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"k8s.io/client-go/rest"

	"github.com/plexus-cni/plexus/internal/controller"
	ctlipam "github.com/plexus-cni/plexus/internal/controller/ipam"
	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/internal/testbed/faults"
	plexusclient "github.com/plexus-cni/plexus/pkg/client/clientset/versioned"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
	"github.com/plexus-cni/plexus/pkg/ipam/store/etcdstore"
	"github.com/plexus-cni/plexus/pkg/ipam/store/kubestore"
)

// errKilled fails the writes of a reclaimer we killed.
var errKilled = errors.New("chaos: plexus-controller killed")

// between returns a random duration in [lo, hi).
func between(rnd *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rnd.Int64N(int64(hi-lo)))
}

// sleep waits d or until ctx ends (false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// storeFaults stops and starts the store every 10 to 25 s, for 1 to 4 s.
func (r *run) storeFaults(ctx context.Context) {
	rnd := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	for sleep(ctx, between(rnd, 10*time.Second, 25*time.Second)) {
		if err := r.backend.stopStart(between(rnd, time.Second, 4*time.Second)); err != nil {
			r.t.Errorf("%s: stopping and starting the store: %v", r.name, err)
			return
		}
		r.c.storeStops.Add(1)
	}
}

// controllerFaults runs plexus-controller's IPAM reclaimer and kills it
// again and again: at its first, second or third write (mid-pass, before
// the write is sent), or after 2 to 10 s if it wrote nothing meanwhile.
func (r *run) controllerFaults(ctx context.Context) {
	rnd := rand.New(rand.NewPCG(2, uint64(time.Now().UnixNano())))
	for ctx.Err() == nil {
		killed, mid := r.controllerLife(ctx, rnd)
		if killed {
			r.c.ctlKills.Add(1)
			if mid {
				r.c.ctlMid.Add(1)
			}
		}
	}
}

func (r *run) controllerLife(ctx context.Context, rnd *rand.Rand) (killed, mid bool) {
	life, cancel := context.WithCancel(ctx)
	defer cancel()
	var killedAt, writes atomic.Int64
	var midPass atomic.Bool
	kill := func() {
		if killedAt.CompareAndSwap(0, time.Now().UnixNano()) {
			cancel()
		}
	}
	killAt := int64(1 + rnd.IntN(3))
	hook := func() error {
		if writes.Add(1) >= killAt {
			kill()
			return errKilled
		}
		return nil
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.reclaimer(hook, 5*time.Second, func(rep ctlipam.Report) {
			if k := killedAt.Load(); k != 0 && rep.Started.UnixNano() < k {
				midPass.Store(true)
			}
		}).Run(life)
	}()
	select {
	case <-life.Done():
	case <-time.After(between(rnd, 2*time.Second, 10*time.Second)):
		kill()
	}
	<-done
	return killedAt.Load() != 0 && ctx.Err() == nil, midPass.Load()
}

// reclaimer builds plexus-controller's IPAM component on the backend's
// store, its store client's writes passed through hook (nil: none).
func (r *run) reclaimer(hook func() error, resync time.Duration, observe func(ctlipam.Report)) *ctlipam.Reclaimer {
	rs := r.backend.reclaimerStores(hook)
	logf, err := os.OpenFile(filepath.Join(r.cfg.logDir, "controller-"+r.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		r.t.Errorf("controller log: %v", err)
		logf = os.Stderr
	}
	log := slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// The allocation caches read through an unhooked client, like the pod
	// and node caches (r.env.Client).
	deps := controller.Deps{Config: rs.config, Client: r.env.Client, Plexus: plexusclient.NewForConfigOrDie(r.env.RESTConfig), Log: log}
	opts := ctlipam.Options{Namespaces: rs.namespaces, Etcd: rs.etcd, Resync: resync, Observe: observe}
	opts.Grace = r.cfg.grace
	return ctlipam.New(deps, opts)
}

// reconcile is the final pass: once the grace period of the last
// sandbox deleted without DEL has passed, a reclaimer runs until one of
// its passes, started after that, ends without errors.
func (r *run) reconcile(ctx context.Context) {
	r.mu.Lock()
	after := r.lastAbandon.Add(r.cfg.grace + time.Second)
	r.mu.Unlock()
	reports := make(chan ctlipam.Report, 64)
	life, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.reclaimer(nil, time.Second, func(rep ctlipam.Report) {
			select {
			case reports <- rep:
			default:
			}
		}).Run(life)
	}()
	defer func() { cancel(); <-done }()
	for {
		select {
		case rep := <-reports:
			if rep.Started.After(after) && rep.Errors == 0 {
				r.t.Logf("%s: final reconcile pass: listed %d, freed %d, rebuilt %v", r.name, rep.Listed, rep.Freed, rep.Rebuilt)
				return
			}
		case <-ctx.Done():
			r.t.Errorf("%s: no clean reconcile pass before the run's bound", r.name)
			return
		}
	}
}

// check compares the store with the live sandboxes.
func (r *run) check(ctx context.Context) row {
	st := r.checker
	res := row{delLeaks: int(r.c.delLeaks.Load()), daemonKills: r.c.daemonKills.Load(), store: r.name, adds: r.c.adds.Load(), addOK: r.c.addOK.Load(), dels: r.c.dels.Load(),
		killAdd: r.c.killAdd.Load(), killDel: r.c.killDel.Load(), lostDel: r.c.lostDel.Load(),
		storeStops: r.c.storeStops.Load(), ctlKills: r.c.ctlKills.Load(), ctlMid: r.c.ctlMid.Load()}
	r.mu.Lock()
	defer r.mu.Unlock()
	res.runtimeDups, res.undeleted, res.live = r.runtimeDups, r.undeleted, len(r.live)
	allocs, err := st.List(ctx, store.Filter{})
	if err != nil {
		r.t.Fatalf("%s: listing allocations: %v", r.name, err)
	}
	res.usage = len(allocs)
	byAddr := map[netip.Addr]store.Allocation{}
	for _, a := range allocs {
		byAddr[a.Address] = a
		if sb := r.live[a.ContainerID]; sb == nil || sb.addr != a.Address {
			res.leaked++
			r.t.Errorf("%s: LEAK: %s held by %s (pod %s), not a live sandbox's", r.name, a.Address, a.ContainerID, a.PodName)
		}
	}
	for _, sb := range r.live {
		a, ok := byAddr[sb.addr]
		switch {
		case ok && a.ContainerID == sb.id:
		case ok && r.live[a.ContainerID] != nil:
			res.dups++
			r.t.Errorf("%s: DUPLICATE: %s is %s's, and the store gave it to %s", r.name, sb.addr, sb.id, a.ContainerID)
		default:
			res.lost++
			r.t.Errorf("%s: LOST: live %s's %s is not allocated to it", r.name, sb.id, sb.addr)
		}
	}
	r.checkRecords(ctx, st, &res)
	return res
}

// checkRecords counts holder records of no live sandbox and the index.
func (r *run) checkRecords(ctx context.Context, st store.Store, res *row) {
	spaces, err := st.Spaces(ctx)
	if err != nil {
		r.t.Fatalf("%s: spaces: %v", r.name, err)
	}
	for _, sp := range spaces {
		res.index += sp.Allocated
		hs, err := st.(store.HolderLister).Holders(ctx, sp.Space)
		if err != nil {
			r.t.Fatalf("%s: holder records: %v", r.name, err)
		}
		for _, h := range hs {
			if sb := r.live[h.ContainerID]; sb == nil || sb.addr != h.Address {
				res.stray++
				r.t.Errorf("%s: STRAY: holder record of %s/%s pointing at %s", r.name, h.ContainerID, h.IfName, h.Address)
			}
		}
	}
}

// reclaimerStores is what the reclaimer needs to reach a backend.
type reclaimerStores struct {
	namespaces []string
	etcd       *etcdstore.Options
	config     *rest.Config
}

// kubeBackend is the Kubernetes store in a namespace of the private test
// bed; its fault is kube-apiserver stopped and started.
type kubeBackend struct {
	env *testbed.Env
	ns  string
}

func newKubeBackend(t *testing.T, env *testbed.Env) *kubeBackend {
	return &kubeBackend{env: env, ns: env.Namespace(t, "chaos-ipam")}
}

func (b *kubeBackend) ipamConf() string {
	return fmt.Sprintf(`"kubernetes":{"kubeconfig":%q,"namespace":%q}`, b.env.Kubeconfig, b.ns)
}

func (b *kubeBackend) open(t *testing.T) store.Store {
	s, err := kubestore.New(b.env.RESTConfig, kubestore.Options{Namespace: b.ns})
	if err != nil {
		t.Fatalf("kubestore: %v", err)
	}
	return s
}

func (b *kubeBackend) reclaimerStores(hook func() error) reclaimerStores {
	cfg := rest.CopyConfig(b.env.RESTConfig)
	if hook != nil {
		cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
			return faults.Transport(rt, faults.Func{BeforeFunc: hook})
		}
	}
	return reclaimerStores{namespaces: []string{b.ns}, config: cfg}
}

func (b *kubeBackend) stopStart(down time.Duration) error {
	if err := testbedScript("stop-apiserver"); err != nil {
		return err
	}
	time.Sleep(down) // the outage itself: nothing to await
	return testbedScript("start-apiserver")
}

// testbedScript runs hack/testbed.sh on the test bed PLEXUS_TESTBED_DIR
// names (the private one hack/chaos.sh started), for longer than the
// script's own readiness bound (PLEXUS_READY_TIMEOUT).
func testbedScript(arg string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(intEnv("PLEXUS_READY_TIMEOUT", 60)+120)*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(testbed.Root(), "hack", "testbed.sh"), arg).CombinedOutput()
	if err != nil {
		return fmt.Errorf("testbed.sh %s: %w\n%s", arg, err, out)
	}
	return nil
}

// etcdBackend is the etcd store on a private etcd; its fault is etcd
// killed (SIGKILL) and restarted.
type etcdBackend struct {
	env  *testbed.Env
	etcd *testbed.Etcd
}

func newEtcdBackend(t *testing.T, env *testbed.Env) *etcdBackend {
	return &etcdBackend{env: env, etcd: testbed.StartRestartableEtcd(t)}
}

func (b *etcdBackend) ipamConf() string { return fmt.Sprintf(`"etcd_host":%q`, b.etcd.URL) }

func (b *etcdBackend) open(t *testing.T) store.Store {
	s, err := etcdstore.New(etcdstore.Options{Endpoints: []string{b.etcd.URL}})
	if err != nil {
		t.Fatalf("etcdstore: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func (b *etcdBackend) reclaimerStores(hook func() error) reclaimerStores {
	o := &etcdstore.Options{Endpoints: []string{b.etcd.URL}}
	if hook != nil {
		o.DialOptions = []grpc.DialOption{grpc.WithChainUnaryInterceptor(faults.EtcdInterceptor(faults.Func{BeforeFunc: hook}))}
	}
	return reclaimerStores{etcd: o, config: b.env.RESTConfig}
}

func (b *etcdBackend) stopStart(down time.Duration) error {
	b.etcd.Kill()
	time.Sleep(down) // the outage itself: nothing to await
	return b.etcd.Restart()
}
