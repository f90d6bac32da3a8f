package ipam

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/plexus-cni/plexus/internal/controller"
	"github.com/plexus-cni/plexus/internal/controller/metrics"
	"github.com/plexus-cni/plexus/internal/testbed"
	plexusclient "github.com/plexus-cni/plexus/pkg/client/clientset/versioned"
	"github.com/plexus-cni/plexus/pkg/ipam/alloc"
	"github.com/plexus-cni/plexus/pkg/ipam/config"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
	"github.com/plexus-cni/plexus/pkg/ipam/store/etcdstore"
	"github.com/plexus-cni/plexus/pkg/ipam/store/kubestore"
)

// fakeClock is the reclaimer's injected clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// world is one test's cluster: a namespace, its store, and helpers.
type world struct {
	t      *testing.T
	env    *testbed.Env
	ns     string
	st     store.Store
	opts   Options
	rg     *alloc.Range
	clock  *fakeClock
	r      *Reclaimer
	passes chan Report
	// passCount counts the passes done.
	passCount atomic.Int64
	// metrics is the reclaimer's registry.
	metrics *metrics.Metrics
	// requests counts the reclaimer's API requests by method and path.
	requests *requestLog
}

// requestLog counts the requests a client sends.
type requestLog struct {
	mu sync.Mutex
	n  map[string]int
}

func (l *requestLog) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		what := req.Method + " " + req.URL.Path
		if req.URL.Query().Get("watch") == "true" {
			what = "WATCH " + req.URL.Path
		}
		l.mu.Lock()
		l.n[what]++
		l.mu.Unlock()
		return rt.RoundTrip(req)
	})
}

// count returns the requests whose "METHOD path" has prefix and suffix.
func (l *requestLog) count(prefix, suffix string) int {
	return l.countIf(func(k string) bool { return strings.HasPrefix(k, prefix) && strings.HasSuffix(k, suffix) })
}

// countIf counts the requests ("VERB path") that match.
func (l *requestLog) countIf(match func(string) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for k, v := range l.n {
		if match(k) {
			n += v
		}
	}
	return n
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

const space = "net:ctl"

func newWorld(t *testing.T) *world {
	env := testbed.Require(t)
	w := &world{t: t, env: env, ns: env.Namespace(t, "ipam-ctl"), clock: &fakeClock{t: time.Now().UTC().Truncate(time.Second)},
		passes: make(chan Report, 64)}
	ks, err := kubestore.New(env.RESTConfig, kubestore.Options{Namespace: w.ns})
	if err != nil {
		t.Fatal(err)
	}
	w.st, w.opts = ks, Options{Namespaces: []string{w.ns}}
	if w.rg, err = alloc.NewRange(netip.MustParsePrefix("198.51.100.0/24"), netip.Addr{}, netip.Addr{}, netip.Addr{}, nil); err != nil {
		t.Fatal(err)
	}
	return w
}

// start runs the reclaimer until the test ends.
func (w *world) start() {
	w.requests = &requestLog{n: map[string]int{}}
	cfg := rest.CopyConfig(w.env.RESTConfig)
	cfg.WrapTransport = w.requests.wrap
	w.metrics = metrics.New()
	d := controller.Deps{Config: cfg, Client: kubernetes.NewForConfigOrDie(cfg), Plexus: plexusclient.NewForConfigOrDie(cfg),
		Log: slog.New(slog.NewTextHandler(testWriter{w.t}, nil)), Metrics: w.metrics}
	o := w.opts
	o.Policy, o.Resync, o.MinInterval = Policy{Grace: time.Minute, StickyTTL: time.Hour}, time.Hour, time.Millisecond
	o.Now, o.Observe = w.clock.Now, func(r Report) { w.passCount.Add(1); w.passes <- r }
	w.r = New(d, o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.r.Run(ctx) }()
	w.t.Cleanup(func() {
		cancel()
		<-done
	})
	w.pass()
}

type testWriter struct{ t *testing.T }

func (tw testWriter) Write(b []byte) (int, error) {
	tw.t.Log(string(b))
	return len(b), nil
}

// pass waits for a pass that started after the call (bounded).
func (w *world) pass() Report {
	w.t.Helper()
	var last Report
	for i := 0; i < 2; i++ { // the first may have started before the call
		w.r.poke(nil)
		select {
		case last = <-w.passes:
		case <-time.After(time.Minute):
			w.t.Fatal("no reclaimer pass within a minute")
		}
	}
	return last
}

// eventually passes until cond holds (bounded).
func (w *world) eventually(what string, cond func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			w.t.Fatalf("%s: not within 30s", what)
		}
		w.pass()
	}
}

func randHex() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// node creates a Node object, removed when the test ends.
func (w *world) node() string {
	name := "plx-ipam-" + randHex()
	_, err := w.env.Client.CoreV1().Nodes().Create(w.t.Context(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { w.env.Client.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}) })
	return name
}

func (w *world) pod(name, node string) string {
	w.t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: w.ns},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/none"}}}}
	out, err := w.env.Client.CoreV1().Pods(w.ns).Create(w.t.Context(), p, metav1.CreateOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	return string(out.UID)
}

func (w *world) deletePod(name string) {
	w.t.Helper()
	zero := int64(0)
	if err := w.env.Client.CoreV1().Pods(w.ns).Delete(w.t.Context(), name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		w.t.Fatal(err)
	}
}

// allocate allocates for a container of pod name/uid created at created.
func (w *world) allocate(cid, name, uid string, created time.Time, sticky bool) store.Allocation {
	w.t.Helper()
	a, err := w.st.Allocate(w.t.Context(), store.Request{Space: space, Range: w.rg, Holder: store.Holder{ContainerID: cid, IfName: "net1",
		Network: "ctl", PodNamespace: w.ns, PodName: name, PodUID: uid, Node: "n", Created: created, Sticky: sticky}})
	if err != nil {
		w.t.Fatal(err)
	}
	return a
}

// holder returns the key holding addr now (zero when free).
func (w *world) holder(addr netip.Addr) store.Key {
	w.t.Helper()
	all, err := w.st.List(w.t.Context(), store.Filter{Space: space})
	if err != nil {
		w.t.Fatal(err)
	}
	for _, a := range all {
		if a.Address == addr {
			return a.Key()
		}
	}
	return store.Key{}
}

func (w *world) freed(a store.Allocation) func() bool {
	return func() bool { return w.holder(a.Address) == store.Key{} }
}

// The reclaimer on the test bed's API server: every way a pod goes away
// frees its address (also while the controller is down), nothing that may
// still be used is freed, and sticky addresses follow the pod name.
func TestReclaimer(t *testing.T) {
	w := newWorld(t)
	old := w.clock.Now().Add(-10 * time.Minute)
	live, dying := w.node(), w.node()
	running := w.allocate("c-run", "run", w.pod("run", live), old, false)
	pending := w.allocate("c-pend", "pend", w.pod("pend", ""), old, false)
	ghost := w.allocate("c-ghost", "ghost", "uid-never", old, false)           // ADD done, pod never created
	fresh := w.allocate("c-fresh", "fresh", "uid-fresh", w.clock.Now(), false) // ADD just done, pod not seen yet
	machine := w.allocate("c-vm", "", "", old, false)                          // no pod identity
	downUID := w.pod("down", live)
	down := w.allocate("c-down", "down", downUID, old, false)
	w.deletePod("down") // while the controller is not running
	term := w.allocate("c-term", "term", w.pod("term", live), old, false)
	orphan := w.allocate("c-orphan", "orphan", w.pod("orphan", dying), old, false)

	w.start()
	w.eventually("pod deleted while the controller was down", w.freed(down))
	w.eventually("allocation whose pod never came", w.freed(ghost))

	p, err := w.env.Client.CoreV1().Pods(w.ns).Get(t.Context(), "term", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Status.Phase = corev1.PodFailed
	if _, err := w.env.Client.CoreV1().Pods(w.ns).UpdateStatus(t.Context(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.eventually("terminal pod", w.freed(term))
	if err := w.env.Client.CoreV1().Nodes().Delete(t.Context(), dying, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	w.eventually("pod of a deleted node", w.freed(orphan))

	w.pass()
	for what, a := range map[string]store.Allocation{"running pod": running, "pending pod": pending,
		"allocation within the grace period": fresh, "holder without pod identity": machine} {
		if got := w.holder(a.Address); got != a.Key() {
			t.Errorf("%s: %s now held by %+v, want %+v", what, a.Address, got, a.Key())
		}
	}
	w.clock.Advance(2 * time.Minute)
	w.eventually("allocation past the grace period without its pod", w.freed(fresh))
}

// A StatefulSet pod recreated under its name (new UID): with sticky it
// gets its address back through the reservation; without, the old
// address is freed and the new pod's new one is kept.
func TestReclaimerStatefulSet(t *testing.T) {
	w := newWorld(t)
	old := w.clock.Now().Add(-10 * time.Minute)
	n := w.node()
	replicas := int32(2)
	set := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: w.ns}, Spec: appsv1.StatefulSetSpec{
		Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "db"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/none"}}}}}}
	if _, err := w.env.Client.AppsV1().StatefulSets(w.ns).Create(t.Context(), set, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	db := w.allocate("c-db-a", "db-0", w.pod("db-0", n), old, true)
	web := w.allocate("c-web-a", "web-0", w.pod("web-0", n), old, false)
	w.start()

	// Sticky: the deleted pod's address becomes the reservation of db-0.
	w.deletePod("db-0")
	rk := store.ReservationKey(space, w.ns, "db-0", "net1", 0)
	w.eventually("reservation of db-0", func() bool { return w.holder(db.Address) == rk })
	w.clock.Advance(2 * time.Minute) // past the reservation's grace: the StatefulSet keeps it
	w.pass()
	if got := w.holder(db.Address); got != rk {
		t.Fatalf("reservation wanted by the StatefulSet: %s held by %+v", db.Address, got)
	}
	uid := w.pod("db-0", n)
	h := store.Holder{ContainerID: "c-db-b", IfName: "net1", Network: "ctl", PodNamespace: w.ns, PodName: "db-0", PodUID: uid,
		Node: n, Created: old, Sticky: true}
	if a, err := w.st.Transfer(t.Context(), rk, h); err != nil || a.Address != db.Address { // what the plugin's ADD does
		t.Fatalf("takeover: %v, %v; want %s", a.Address, err, db.Address)
	}
	w.pass()
	if got := w.holder(db.Address); got.ContainerID != "c-db-b" {
		t.Errorf("recreated db-0 lost its address: held by %+v", got)
	}

	// Not sticky: web-0's old address is freed, the new one is kept.
	w.deletePod("web-0")
	newWeb := w.allocate("c-web-b", "web-0", w.pod("web-0", n), old, false)
	w.eventually("old web-0's address", w.freed(web))
	w.pass()
	if got := w.holder(newWeb.Address); got != newWeb.Key() {
		t.Errorf("the new web-0's %s was lost to the reconciler: held by %+v", newWeb.Address, got)
	}

	// Scaled to zero and the pod gone: the reservation goes after its grace period.
	replicas = 0
	s, err := w.env.Client.AppsV1().StatefulSets(w.ns).Get(t.Context(), "db", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Spec.Replicas = &replicas
	if _, err := w.env.Client.AppsV1().StatefulSets(w.ns).Update(t.Context(), s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.deletePod("db-0")
	w.eventually("reservation after the pod went", func() bool { return w.holder(db.Address) == rk })
	w.clock.Advance(2 * time.Minute)
	w.eventually("reservation of a scaled-down StatefulSet", w.freed(db))
}

// The etcd store is swept through the same Store interface (-ipam-etcd-host).
func TestReclaimerEtcd(t *testing.T) {
	w := newWorld(t)
	u, err := url.Parse(testbed.StartEtcd(t))
	if err != nil {
		t.Fatal(err)
	}
	eo := etcdstore.Options{Endpoints: config.EtcdEndpoints(u.Host, false), Prefix: "/reclaim-" + randHex() + "/"}
	es, err := etcdstore.New(eo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { es.Close() })
	w.st, w.opts = es, Options{Etcd: &eo}
	old := w.clock.Now().Add(-10 * time.Minute)
	keep := w.allocate("c-keep", "keep", w.pod("keep", ""), old, false)
	gone := w.allocate("c-gone", "gone", w.pod("gone", ""), old, false)
	w.deletePod("gone")
	w.start()
	w.eventually("deleted pod's address in etcd", w.freed(gone))
	if got := w.holder(keep.Address); got != keep.Key() {
		t.Errorf("live pod's %s held by %+v", keep.Address, got)
	}
}

// Passes that events trigger answer from the informer caches: after the
// start pass no allocation is listed until the resync (an hour here),
// however many pods go. A lost node's pods are freed in one pass that
// reads the node once, and the pool gauge follows the cache.
func TestReclaimerEventPassesReadTheCache(t *testing.T) {
	w := newWorld(t)
	old := w.clock.Now().Add(-10 * time.Minute)
	live, lost := w.node(), w.node()
	var onLost []store.Allocation
	for i := range 12 {
		name := fmt.Sprintf("lost-%d", i)
		onLost = append(onLost, w.allocate("c-"+name, name, w.pod(name, lost), old, false))
	}
	kept := w.allocate("c-kept", "kept", w.pod("kept", live), old, false)
	gone := w.allocate("c-gone", "gone", w.pod("gone", live), old, false)
	w.start()
	allocLists := func() int { return w.requests.count("GET /apis/plexus.dev/", "/ipallocations") }
	listsAtStart := allocLists()
	allocReads := func() int {
		return w.requests.countIf(func(k string) bool {
			return strings.HasPrefix(k, "GET /apis/plexus.dev/") && strings.Contains(k, "/ipallocations/")
		})
	}
	readsAtStart := allocReads()

	w.deletePod("gone")
	w.eventually("deleted pod", w.freed(gone))
	passesBefore := w.passCount.Load()
	if err := w.env.Client.CoreV1().Nodes().Delete(t.Context(), lost, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var rep Report
	w.eventually("pods of the lost node", func() bool {
		rep = w.pass()
		for _, a := range onLost {
			if !w.freed(a)() {
				return false
			}
		}
		return true
	})
	if rep.Kind != EventPass {
		t.Errorf("pass kind %q, want %q", rep.Kind, EventPass)
	}
	if n := allocLists() - listsAtStart; n != 0 {
		t.Errorf("event passes listed the allocations %d times; want 0 (the cache answers until the resync)", n)
	}
	if n := allocReads() - readsAtStart; n != 0 {
		t.Errorf("freeing %d allocations read them %d times; want 0 (their deletes are guarded by the cached resourceVersion)", len(onLost)+1, n)
	}
	if n, passes := w.requests.count("GET /api/v1/nodes/"+lost, ""), w.passCount.Load()-passesBefore; n > int(passes) {
		t.Errorf("the lost node was read %d times in %d passes for %d pods; want one read per pass at most", n, passes, len(onLost))
	}
	if got := w.holder(kept.Address); got != kept.Key() {
		t.Errorf("running pod's %s held by %+v", kept.Address, got)
	}
	want := fmt.Sprintf(`plexus_controller_ipam_pool_allocated_addresses{namespace=%q,space=%q,store="kubernetes"} 1`, w.ns, space)
	w.eventually("pool gauge", func() bool {
		rec := httptest.NewRecorder()
		w.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return strings.Contains(rec.Body.String(), want)
	})
}

// The caches keep what decisions read and nothing else.
func TestSlimObjects(t *testing.T) {
	now := metav1.Now()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u", ResourceVersion: "7", DeletionTimestamp: &now,
		Annotations: map[string]string{"k8s.v1.cni.cncf.io/network-status": strings.Repeat("x", 4096)}, Labels: map[string]string{"a": "b"}},
		Spec:   corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "i"}}},
		Status: corev1.PodStatus{Phase: corev1.PodFailed, Conditions: []corev1.PodCondition{{Type: corev1.PodReady}}}}
	o, err := slimObject(p)
	if err != nil {
		t.Fatal(err)
	}
	sp := o.(*corev1.Pod)
	if sp.Name != "p" || sp.Namespace != "ns" || sp.UID != "u" || sp.ResourceVersion != "7" || sp.DeletionTimestamp == nil ||
		sp.Spec.NodeName != "n1" || sp.Status.Phase != corev1.PodFailed {
		t.Errorf("slim pod lost what decisions read: %+v", sp)
	}
	if sp.Annotations != nil || sp.Labels != nil || sp.Spec.Containers != nil || sp.Status.Conditions != nil {
		t.Errorf("slim pod kept more than decisions read: %+v", sp)
	}
	replicas := int32(3)
	ss, _ := slimObject(&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "ns"}, Spec: appsv1.StatefulSetSpec{
		Replicas: &replicas, Ordinals: &appsv1.StatefulSetOrdinals{Start: 2}, ServiceName: "svc"}})
	if s := ss.(*appsv1.StatefulSet); *s.Spec.Replicas != 3 || s.Spec.Ordinals.Start != 2 || s.Spec.ServiceName != "" {
		t.Errorf("slim StatefulSet: %+v", s.Spec)
	}
	tomb := cache.DeletedFinalStateUnknown{Key: "ns/p", Obj: p}
	if got, _ := slimObject(tomb); got != any(tomb) {
		t.Errorf("tombstone changed: %+v", got)
	}
}
