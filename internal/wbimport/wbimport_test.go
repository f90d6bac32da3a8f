package wbimport

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/plexus-cni/plexus/pkg/ipam/config"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
	"github.com/plexus-cni/plexus/pkg/ipam/store/memstore"
)

func ippool(name, rng string, allocs map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "whereabouts.cni.cncf.io/v1alpha1", "kind": "IPPool",
		"metadata": map[string]any{"name": name, "namespace": "kube-system"},
		"spec":     map[string]any{"range": rng, "allocations": allocs},
	}}
}

func entry(id, podref, ifname string) map[string]any {
	return map[string]any{"id": id, "podref": podref, "ifname": ifname}
}

func TestDecodePool(t *testing.T) {
	p, err := DecodePool(ippool("10.0.0.0-24", "10.0.0.0/24", map[string]any{
		"1": entry("c1", "ns/a", "net1"), "254": entry("c2", "ns/b", "net2"),
		"256": entry("c3", "ns/c", "net1"), "x": entry("c4", "ns/d", "net1"), "-1": entry("c5", "ns/e", "net1"),
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{{netip.MustParseAddr("10.0.0.1"), Holder{"c1", "ns/a", "net1"}}, {netip.MustParseAddr("10.0.0.254"), Holder{"c2", "ns/b", "net2"}}}
	if diff := cmp.Diff(want, p.Entries, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	if len(p.Bad) != 3 || !strings.Contains(strings.Join(p.Bad, "\n"), "10.0.1.0 is outside 10.0.0.0/24") {
		t.Errorf("bad = %q, want the offsets 256, x and -1", p.Bad)
	}
	v6, err := DecodePool(ippool("blue-2001-db8---64", "2001:db8::/64", map[string]any{"18446744073709551614": entry("c", "ns/a", "net1")}))
	if err != nil || len(v6.Entries) != 0 || len(v6.Bad) != 1 {
		// 2^64-2 does not fit Whereabouts' int64 offsets: it never wrote it.
		t.Errorf("v6 offset past int64: %+v %v", v6, err)
	}
	v6, _ = DecodePool(ippool("blue-2001-db8---64", "2001:db8::/64", map[string]any{"65536": entry("c", "ns/a", "net1")}))
	if len(v6.Entries) != 1 || v6.Entries[0].Address != netip.MustParseAddr("2001:db8::1:0") {
		t.Errorf("v6 entries %+v", v6.Entries)
	}
	if _, err := DecodePool(ippool("x", "nonsense", nil)); err == nil || !strings.Contains(err.Error(), `spec.range "nonsense"`) {
		t.Errorf("bad range: %v", err)
	}
}

func TestReservationAddr(t *testing.T) {
	for _, tc := range []struct {
		name, net, addr string
	}{
		{"10.0.0.5", "", "10.0.0.5"},
		{"blue-10.0.0.5", "blue", "10.0.0.5"},
		{"a-b-10.0.0.5", "a-b", "10.0.0.5"},
		{"2001-db8--5", "", "2001:db8::5"},
		{"blue-2001-db8--0", "blue", "2001:db8::"},
	} {
		n, a, ok := reservationAddr(tc.name, []string{"blue", "a-b", "a"})
		if !ok || n != tc.net || a.String() != tc.addr {
			t.Errorf("%s: %q %v %v, want %q %s", tc.name, n, a, ok, tc.net, tc.addr)
		}
	}
}

// world is a fake cluster: NADs, pods and a memory store.
type world struct {
	nets  []*Network
	pods  map[string]*corev1.Pod
	store *memstore.Store
}

func (w *world) For(*Network) (string, store.Store, error) { return "mem", w.store, nil }

func (w *world) network(t *testing.T, nad, conf string) {
	t.Helper()
	c, err := config.Loader{Files: config.OSFiles{}}.Load([]byte(conf), config.Args{})
	if err != nil {
		t.Fatal(err)
	}
	w.nets = append(w.nets, &Network{NAD: nad, Conf: c})
}

// pod adds a running pod with net1 on addr from nad (no status when nad
// is empty).
func (w *world) pod(ref, nad, addr string, phase corev1.PodPhase) {
	ns, name, _ := strings.Cut(ref, "/")
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name)},
		Spec: corev1.PodSpec{NodeName: "node-a"}, Status: corev1.PodStatus{Phase: phase}}
	if nad != "" {
		p.Annotations = map[string]string{"k8s.v1.cni.cncf.io/network-status": `[{"name":"` + nad + `","interface":"net1","ips":["` + addr + `"]}]`}
	}
	w.pods[ref] = p
}

func (w *world) inputs(pools []Pool, resv []Reservation) Inputs {
	return Inputs{Pools: pools, Reservations: resv, Networks: w.nets, Pod: func(ns, name string) (*corev1.Pod, error) {
		if ns == "broken" {
			return nil, errors.New("connection refused")
		}
		return w.pods[ns+"/"+name], nil
	}}
}

func results(r *Report) []string {
	var out []string
	for _, row := range r.Rows {
		out = append(out, row.Source+" "+row.Address+" "+row.Space+" "+row.Result)
	}
	return out
}

// The import claims the addresses of live pods in the space of the NAD
// their network-status names, skips pods that are gone or ended, imports
// a pool no NAD names under its own network_name, imports a reservation
// without pool allocation only when its pod shows the address, reports an
// address plexus-ipam gave to another pod; a dry run writes nothing, a
// second run changes nothing, and plexus-ipam then never hands out an
// imported address.
func TestRun(t *testing.T) {
	w := &world{pods: map[string]*corev1.Pod{}, store: memstore.New()}
	w.network(t, "app/blue", `{"cniVersion":"1.0.0","name":"blue","ipam":{"type":"whereabouts","range":"192.0.2.0/28","network_name":"blue"}}`)
	w.network(t, "app/plain", `{"cniVersion":"1.0.0","name":"plain","ipam":{"type":"whereabouts","range":"198.51.100.0/28"}}`)
	w.pod("app/live", "app/blue", "192.0.2.1", corev1.PodRunning)
	w.pod("app/nostatus", "", "", corev1.PodRunning)
	w.pod("app/done", "app/blue", "192.0.2.3", corev1.PodSucceeded)
	w.pod("app/other", "app/plain", "198.51.100.1", corev1.PodRunning)
	w.pod("app/orphan", "app/plain", "198.51.100.9", corev1.PodRunning)
	w.pod("app/stolen", "app/plain", "198.51.100.2", corev1.PodRunning)
	decode := func(u *unstructured.Unstructured) Pool {
		p, err := DecodePool(u)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	pools := []Pool{
		decode(ippool("blue-192.0.2.0-28", "192.0.2.0/28", map[string]any{"1": entry("c-live", "app/live", "net1"),
			"2": entry("c-nostatus", "app/nostatus", "net1"), "3": entry("c-done", "app/done", "net1"), "4": entry("c-gone", "app/gone", "net1")})),
		decode(ippool("198.51.100.0-28", "198.51.100.0/28", map[string]any{"1": entry("c-other", "app/other", "net1"),
			"2": entry("c-stolen", "app/stolen", "net1")})),
		decode(ippool("red-203.0.113.0-24", "203.0.113.0/24", map[string]any{"7": entry("c-live2", "app/live", "net2")})),
	}
	resv := []Reservation{
		{Name: "blue-192.0.2.1", Holder: Holder{"c-live", "app/live", "net1"}},
		{Name: "198.51.100.9", Holder: Holder{"c-orphan", "app/orphan", "net1"}},
		{Name: "198.51.100.10", Holder: Holder{"c-leak", "app/other", "net1"}},
	}
	// A pod that came up under plexus-ipam already holds .2 of plain.
	thief := store.Holder{ContainerID: "c-new", IfName: "net1", PodNamespace: "app", PodName: "new", PodUID: "uid-new"}
	if _, err := w.store.Allocate(t.Context(), store.Request{Space: "net:", Want: netip.MustParseAddr("198.51.100.2"), Holder: thief}); err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }

	dry, err := Run(t.Context(), w.inputs(pools, resv), w, Options{DryRun: true, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := w.store.List(t.Context(), store.Filter{}); len(got) != 1 {
		t.Fatalf("dry run wrote: %v", got)
	}
	if dry.Count(WouldImport) != 5 || dry.Count(Problem) != 1 {
		t.Errorf("dry run: %s\n%v", dry.Summary(), results(dry))
	}

	rep, err := Run(t.Context(), w.inputs(pools, resv), w, Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"ippool/blue-192.0.2.0-28 192.0.2.3  skipped",
		"ippool/blue-192.0.2.0-28 192.0.2.4  skipped",
		"reservation/198.51.100.10 198.51.100.10  skipped",
		"ippool/blue-192.0.2.0-28 192.0.2.1 blue imported",
		"ippool/blue-192.0.2.0-28 192.0.2.2 blue imported",
		"ippool/198.51.100.0-28 198.51.100.1 default imported",
		"ippool/198.51.100.0-28 198.51.100.2 default problem",
		"ippool/red-203.0.113.0-24 203.0.113.7 red imported",
		"reservation/198.51.100.9 198.51.100.9 default imported",
	}
	if diff := cmp.Diff(want, results(rep)); diff != "" {
		t.Errorf("rows (-want +got):\n%s\n%+v", diff, rep.Rows)
	}
	if d := rep.Rows[6].Detail; !strings.Contains(d, "pod app/new (container c-new), net1: two pods hold it") {
		t.Errorf("conflict detail %q", d)
	}
	live, err := w.store.Lookup(t.Context(), store.Key{Space: "net:blue", ContainerID: "c-live", IfName: "net1"})
	if err != nil || live.PodUID != "uid-live" || live.Node != "node-a" || live.Network != "" || !live.Created.Equal(now()) {
		t.Errorf("imported holder %+v (%v)", live, err)
	}

	again, err := Run(t.Context(), w.inputs(pools, resv), w, Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if again.Count(Already) != 5 || again.Count(Imported) != 0 || again.Count(Problem) != 1 {
		t.Errorf("second run: %s\n%v", again.Summary(), results(again))
	}

	// plexus-ipam fills both ranges: never an imported address.
	imported := map[netip.Addr]bool{}
	for _, row := range rep.Rows {
		if row.Result == Imported {
			imported[netip.MustParseAddr(row.Address)] = true
		}
	}
	for _, n := range w.nets[:2] {
		r := n.Conf.Slots[0].Ranges[0]
		for i := 0; ; i++ {
			a, err := w.store.Allocate(t.Context(), store.Request{Space: n.Conf.Space(r), Range: r,
				Holder: store.Holder{ContainerID: "fill-" + n.NAD + string(rune('a'+i)), IfName: "net1"}})
			if errors.Is(err, store.ErrExhausted) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if imported[a.Address] {
				t.Errorf("%s handed out the imported %s", n.NAD, a.Address)
			}
		}
	}
}

// Reading a pod fails: the import stops with the error, having written
// nothing.
func TestRunPodReadError(t *testing.T) {
	w := &world{pods: map[string]*corev1.Pod{}, store: memstore.New()}
	p, _ := DecodePool(ippool("192.0.2.0-24", "192.0.2.0/24", map[string]any{"1": entry("c", "broken/p", "net1")}))
	if _, err := Run(context.Background(), w.inputs([]Pool{p}, nil), w, Options{}); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error %v, want the pod read's", err)
	}
}

// A node-slice pool (Fast IPAM) goes to the space of the NAD whose range
// it was cut from.
func TestNodeSlicePool(t *testing.T) {
	w := &world{pods: map[string]*corev1.Pod{}, store: memstore.New()}
	w.network(t, "app/fast", `{"cniVersion":"1.0.0","name":"fast","ipam":{"type":"whereabouts","range":"10.128.0.0/16","network_name":"fast","node_slice_size":"/24"}}`)
	w.pod("app/p", "", "", corev1.PodRunning)
	p, err := DecodePool(ippool("fast-node-a-10.128.3.0-24", "10.128.3.0/24", map[string]any{"5": entry("c", "app/p", "net1")}))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(t.Context(), w.inputs([]Pool{p}, nil), w, Options{})
	if err != nil || rep.Count(Imported) != 1 {
		t.Fatalf("%v %v", results(rep), err)
	}
	if a, err := w.store.Lookup(t.Context(), store.Key{Space: "net:fast", ContainerID: "c", IfName: "net1"}); err != nil || a.Address.String() != "10.128.3.5" {
		t.Errorf("imported %+v (%v), want 10.128.3.5 in net:fast", a, err)
	}
}
