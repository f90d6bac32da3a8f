package scale

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/plexus-cni/plexus/internal/testbed"
)

// labelScale marks the Node objects a run creates.
const labelScale = "plexus.dev/scale"

// figures are one size's measurements.
type figures struct {
	size size
	wall time.Duration

	watches []watchSpec // a plexusd's watches, as detected

	// Per operation, from the API server's metrics over the phase:
	// requests (WATCH left out) and watch bytes, by group ("" core).
	addReq, addBytes, delReq, delBytes map[string]float64
	add, del                           phaseResult

	// The real plexusds alone, idle: requests per minute per plexusd.
	nodeIdleReqMin, nodeIdleWatchMin float64

	// Idle window with everything running.
	idleReqS      float64 // requests/s, WATCH left out
	idleWatchMin  float64 // watches ended (re-opened) per minute
	openWatches   float64
	expectReopenM float64 // open watches / 7.5 min: reflectors' steady re-open rate

	plexusdRSS, plexusdReady       float64 // MiB (largest), seconds (slowest)
	controllerRSS                  float64 // MiB
	ctlStart, ctlPass              float64 // seconds: start to first pass done; that pass
	lostPods                       int
	lostFreed                      float64 // seconds: node deleted to its allocations freed
	drainPods, drainFreed          int
	drainTook                      float64            // seconds
	drainReq                       map[string]float64 // requests per free during the drain, by group
	controllerQPS                  float64            // the controller's --kube-api-qps (0: unknown)
	problems                       []string           // failures: ADDs or DELs that failed
	notes                          []string           // targets the run could not even wait for
	addFailures, delFailures       int
	simWatcherStart, populateTook  time.Duration
	allocsAfterDrain, allocsBefore int
}

func (f *figures) problem(format string, args ...any) {
	f.problems = append(f.problems, fmt.Sprintf(format, args...))
}

func (f *figures) note(format string, args ...any) {
	f.notes = append(f.notes, fmt.Sprintf(format, args...))
}

// freesPerSecond is the drain's rate.
func (f *figures) freesPerSecond() float64 {
	if f.drainTook <= 0 {
		return 0
	}
	return float64(f.drainFreed) / f.drainTook
}

// sizeRun is one size's simulation.
type sizeRun struct {
	ctx     context.Context
	t       *testing.T
	env     *testbed.Env
	cfg     config
	sz      size
	f       *figures
	podNS   string
	ipamNS  string
	nodes   []string
	pods    []*pod
	daemons []*plexusd
	ctl     *proc
}

func newSizeRun(ctx context.Context, t *testing.T, env *testbed.Env, cfg config, sz size) *sizeRun {
	r := &sizeRun{ctx: ctx, t: t, env: env, cfg: cfg, sz: sz, f: &figures{size: sz}}
	r.f.controllerQPS, _ = strconv.ParseFloat(cfg.controllerFlag("kube-api-qps"), 64)
	r.podNS, r.ipamNS = env.Namespace(t, "scale-pods"), env.Namespace(t, "scale-ipam")
	for i := range sz.nodes {
		r.nodes = append(r.nodes, fmt.Sprintf("scale-node-%04d", i+1))
	}
	return r
}

// step logs a phase's start with the time since the size began.
func (r *sizeRun) step(start time.Time, format string, args ...any) {
	fmt.Printf("scale: %s  +%-5s %s\n", r.sz, time.Since(start).Round(time.Second), fmt.Sprintf(format, args...))
}

func (r *sizeRun) fatal(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("%s: %s", r.sz, fmt.Sprintf(format, args...))
}

func (r *sizeRun) apiScrape() scrape {
	s, err := apiScrape(r.ctx, r.env.Client.CoreV1().RESTClient())
	if err != nil {
		r.fatal("%v", err)
	}
	return s
}

// execute runs the phases and returns the figures.
func (r *sizeRun) execute() *figures {
	start := time.Now()
	f, cfg := r.f, r.cfg
	r.createNodes()
	r.t.Cleanup(r.deleteNodes)

	// The API server alone, idle: its own requests (its lease, its
	// loopback informers' watches), the baseline of the plexusds' window.
	r.step(start, "the API server alone, idle for %s", cfg.nodeIdle)
	b0 := r.apiScrape()
	r.sleep(cfg.nodeIdle)
	b1 := r.apiScrape()
	base := diff(b0, b1)

	// The real plexusds, alone: what they watch, and their idle load.
	before := openWatches(b1)
	r.step(start, "starting %d plexusd", r.sz.real)
	r.startPlexusds()
	f.watches = r.settledWatches(before)
	var names []string
	for _, w := range f.watches {
		names = append(names, w.String())
	}
	r.step(start, "a plexusd watches: %s", strings.Join(names, ", "))
	if len(f.watches) == 0 {
		r.fatal("the API server counted no watch of the real plexusds")
	}
	r.step(start, "the real plexusds alone, idle for %s", cfg.nodeIdle)
	s0 := r.apiScrape()
	r.sleep(cfg.nodeIdle)
	d := diff(s0, r.apiScrape())
	mins := cfg.nodeIdle.Minutes() * float64(r.sz.real)
	f.nodeIdleReqMin = max(0, total(d.requests)+d.watchesEnded-total(base.requests)-base.watchesEnded) / mins
	f.nodeIdleWatchMin = max(0, d.watchesEnded-base.watchesEnded) / mins
	f.note("the real plexusds alone, idle, requests/min per plexusd, the API server's own included: %s", top(d.byVerb, 6, mins))
	f.note("the API server alone, idle, requests/min (subtracted): %s", top(base.byVerb, 6, cfg.nodeIdle.Minutes()))

	// The controller, the simulated nodes, the pods.
	r.ctl = startController(r.t, cfg, r.env, r.ipamNS, fmt.Sprintf("scale-%d", time.Now().UnixNano()))
	if _, err := waitController(r.ctx, r.ctl, 2*time.Minute, func(s controllerState) bool { return s.passes >= 1 }); err != nil {
		r.fatal("plexus-controller: no reconcile pass: %v (log in %s)", err, cfg.logDir)
	}
	r.step(start, "simulated watchers for %d nodes", r.sz.nodes-r.sz.real)
	t0 := time.Now()
	sim, err := startSimWatchers(r.ctx, r.env.RESTConfig, r.nodes[r.sz.real:], f.watches, r.ipamNS, 50, 3*time.Minute)
	if err != nil {
		r.fatal("%v", err)
	}
	r.t.Cleanup(sim.stop)
	f.simWatcherStart = time.Since(t0)
	r.step(start, "creating %d pods", r.sz.pods)
	t0 = time.Now()
	r.createPods()
	f.populateTook = time.Since(t0)

	// ADD phase.
	m := newIPAM(r.env.Kubeconfig, r.ipamNS, cfg.cidr, r.daemons)
	defer m.close()
	r.step(start, "ADD phase: %d ADDs at %.0f/s", len(r.pods), cfg.addRate)
	s0 = r.apiScrape()
	f.add = m.paced(r.phaseCtx(len(r.pods)), "ADD", r.pods, cfg.addRate, cfg.inflight)
	time.Sleep(time.Second) // the last events reach their watchers
	d = diff(s0, r.apiScrape())
	f.addReq, f.addBytes = perOp(d.requests, len(f.add.all)), perOp(d.watchBytes, len(f.add.all))
	f.addFailures = f.add.failed
	f.note("requests per ADD: %s", top(d.byVerb, 8, float64(max(1, len(f.add.all)))))
	if f.add.failed > 0 {
		f.problem("%d of %d ADDs failed, first: %v", f.add.failed, f.add.ops, f.add.firstErr)
	}
	r.noteRSS()

	// Idle.
	r.step(start, "idle for %s", cfg.idle)
	s0 = r.apiScrape()
	r.sleep(cfg.idle)
	s1 := r.apiScrape()
	d = diff(s0, s1)
	f.idleReqS = total(d.requests) / cfg.idle.Seconds()
	f.idleWatchMin = d.watchesEnded / cfg.idle.Minutes()
	f.openWatches = total(openWatches(s1))
	f.expectReopenM = f.openWatches / 7.5
	f.note("idle, cluster requests/s: %s", top(d.byVerb, 8, cfg.idle.Seconds()))
	r.noteRSS()

	// Controller restart: start to its first pass.
	r.step(start, "restarting plexus-controller")
	r.ctl.stop()
	r.ctl = startController(r.t, cfg, r.env, r.ipamNS, fmt.Sprintf("scale-%d", time.Now().UnixNano()))
	st, err := waitController(r.ctx, r.ctl, 3*time.Minute, func(s controllerState) bool { return s.passes >= 1 })
	if err != nil {
		r.fatal("plexus-controller after restart: no reconcile pass: %v", err)
	}
	f.ctlStart, f.ctlPass = time.Since(r.ctl.started).Seconds(), st.passSeconds
	r.noteRSS()

	r.lostNode(start)
	r.delPhase(start, m)
	r.drain(start)
	r.noteRSS()
	return f
}

// settledWatches reads the open watches until two reads 2 s apart agree
// (their informers open the watches after their lists; bounded: 30 s)
// and returns what the real plexusds added to before.
func (r *sizeRun) settledWatches(before map[string]float64) []watchSpec {
	prev := detectWatches(before, openWatches(r.apiScrape()), r.sz.real)
	for range 15 {
		time.Sleep(2 * time.Second)
		cur := detectWatches(before, openWatches(r.apiScrape()), r.sz.real)
		if fmt.Sprint(cur) == fmt.Sprint(prev) {
			return cur
		}
		prev = cur
	}
	return prev
}

// phaseCtx bounds a paced phase of n operations: three times its
// schedule, plus a minute.
func (r *sizeRun) phaseCtx(n int) context.Context {
	ctx, cancel := context.WithTimeout(r.ctx, 3*time.Duration(float64(n)/r.cfg.addRate*float64(time.Second))+time.Minute)
	r.t.Cleanup(cancel)
	return ctx
}

func (r *sizeRun) sleep(d time.Duration) {
	select {
	case <-r.ctx.Done():
		r.fatal("out of time: %v", r.ctx.Err())
	case <-time.After(d):
	}
}

func perOp(m map[string]float64, ops int) map[string]float64 {
	out := map[string]float64{}
	if ops == 0 {
		return out
	}
	for k, v := range m {
		out[k] = v / float64(ops)
	}
	return out
}

// noteRSS keeps the largest resident sets seen.
func (r *sizeRun) noteRSS() {
	for _, d := range r.daemons {
		r.f.plexusdRSS = max(r.f.plexusdRSS, d.rssMB())
	}
	if r.ctl != nil {
		r.f.controllerRSS = max(r.f.controllerRSS, r.ctl.rssMB())
	}
}

func (r *sizeRun) startPlexusds() {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, node := range r.nodes[:r.sz.real] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := startPlexusd(r.ctx, r.t, r.env, r.cfg.logDir, node, r.ipamNS)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			r.daemons = append(r.daemons, d)
			r.f.plexusdReady = max(r.f.plexusdReady, d.ready.Seconds())
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		r.fatal("%v", errs[0])
	}
}

// parallel runs f(i) for i in [0, n) on workers goroutines, retrying each
// (bounded by the run's context) until it succeeds.
func (r *sizeRun) parallel(n, workers int, f func(ctx context.Context, i int) error) {
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				_ = wait.PollUntilContextCancel(r.ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
					return f(ctx, i) == nil, nil
				})
			}
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if r.ctx.Err() != nil {
		r.fatal("out of time: %v", r.ctx.Err())
	}
}

func (r *sizeRun) createNodes() {
	r.parallel(len(r.nodes), 16, func(ctx context.Context, i int) error {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: r.nodes[i], Labels: map[string]string{labelScale: "true"}}}
		_, err := r.env.Client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	})
}

func (r *sizeRun) deleteNodes() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := r.env.Client.CoreV1().Nodes().DeleteCollection(ctx, metav1.DeleteOptions{},
		metav1.ListOptions{LabelSelector: labelScale + "=true"})
	if err != nil {
		r.t.Errorf("deleting the Node objects: %v", err)
	}
}

// createPods creates the pods, pod i on node i mod M.
func (r *sizeRun) createPods() {
	r.pods = make([]*pod, r.sz.pods)
	r.parallel(r.sz.pods, 32, func(ctx context.Context, i int) error {
		name := fmt.Sprintf("p-%05d", i)
		node := nodeOf(i, r.sz.pods, r.nodes, r.sz.real)
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: r.podNS},
			Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "pause"}}}}
		got, err := r.env.Client.CoreV1().Pods(r.podNS).Create(ctx, p, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			got, err = r.env.Client.CoreV1().Pods(r.podNS).Get(ctx, name, metav1.GetOptions{})
		}
		if err != nil {
			return err
		}
		r.pods[i] = &pod{ns: r.podNS, name: name, uid: string(got.UID), node: node, sandbox: fmt.Sprintf("scale%05d%054d", i, 0)}
		return nil
	})
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }

// nodeOf places pod i of n on a node. The last node, the simulated one the
// lost-node phase deletes, gets the last lostPods pods (the target's node
// of 30, measured rather than extrapolated); the others are spread round
// robin over the other nodes. Without a simulated node, or with fewer than
// twice lostPods pods, all are round robin.
func nodeOf(i, n int, nodes []string, real int) string {
	m := len(nodes)
	if m <= real || m < 2 || n < 2*lostPods {
		return nodes[i%m]
	}
	if i >= n-lostPods {
		return nodes[m-1]
	}
	return nodes[i%(m-1)]
}
