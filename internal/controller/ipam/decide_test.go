package ipam

import (
	"errors"
	"strconv"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

// fakeWorld is a World of maps.
type fakeWorld struct {
	pods   map[string]*corev1.Pod
	nodes  map[string]bool
	sets   map[string]*appsv1.StatefulSet
	claims map[string]bool
	err    error
}

func (w fakeWorld) Pod(ns, name string) (*corev1.Pod, error) { return w.pods[ns+"/"+name], w.err }
func (w fakeWorld) NodeExists(n string) (bool, error)        { return w.nodes[n], w.err }
func (w fakeWorld) StatefulSet(ns, name string) (*appsv1.StatefulSet, error) {
	return w.sets[ns+"/"+name], w.err
}
func (w fakeWorld) ClaimExists(ns, name string) (bool, error) { return w.claims[ns+"/"+name], w.err }

func pod(name, uid, node string, phase corev1.PodPhase) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID(uid)},
		Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{Phase: phase}}
}

func sts(name string, replicas int32) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Spec: appsv1.StatefulSetSpec{Replicas: &replicas}}
}

func TestDecide(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	old, fresh := now.Add(-time.Hour), now.Add(-10*time.Second)
	p := Policy{Grace: time.Minute, StickyTTL: 2 * time.Hour}
	w := fakeWorld{
		pods: map[string]*corev1.Pod{
			"ns/run": pod("run", "u-run", "n1", corev1.PodRunning), "ns/pend": pod("pend", "u-pend", "", corev1.PodPending),
			"ns/done": pod("done", "u-done", "n1", corev1.PodSucceeded), "ns/fail": pod("fail", "u-fail", "n1", corev1.PodFailed),
			"ns/orphan": pod("orphan", "u-orphan", "gone", corev1.PodRunning), "ns/db-0": pod("db-0", "u-new", "n1", corev1.PodRunning),
		},
		nodes:  map[string]bool{"n1": true},
		sets:   map[string]*appsv1.StatefulSet{"ns/db": sts("db", 2), "ns/small": sts("small", 1)},
		claims: map[string]bool{"ns/vm1.net.net1": true},
	}
	held := func(name, uid string, created time.Time, sticky bool) store.Allocation {
		return store.Allocation{Holder: store.Holder{ContainerID: "c-" + name, IfName: "net1", PodNamespace: "ns", PodName: name,
			PodUID: uid, Created: created, Sticky: sticky}}
	}
	resv := func(name string, created time.Time) store.Allocation {
		return store.Allocation{Holder: store.Reservation(store.Holder{IfName: "net1", PodNamespace: "ns", PodName: name}, created)}
	}
	claimed := func(name, claim string, created time.Time) store.Allocation {
		a := held(name, "u-"+name, created, true)
		a.Claim = claim
		return a
	}
	claimResv := func(claim string, created time.Time) store.Allocation {
		return store.Allocation{Holder: store.Reservation(store.Holder{IfName: "net1", PodNamespace: "ns", PodName: "virt-launcher-x", Claim: claim}, created)}
	}
	tests := []struct {
		name string
		a    store.Allocation
		want Action
	}{
		{"running pod", held("run", "u-run", old, false), Keep},
		{"pending pod", held("pend", "u-pend", old, false), Keep},
		{"succeeded pod", held("done", "u-done", old, false), Free},
		{"failed pod", held("fail", "u-fail", old, false), Free},
		{"pod on a deleted node", held("orphan", "u-orphan", old, false), Free},
		{"deleted pod", held("gone", "u-gone", old, false), Free},
		{"deleted pod within grace", held("gone", "u-gone", fresh, false), Keep},
		{"name reused by a new UID", held("db-0", "u-old", old, false), Free},
		{"new UID's own allocation", held("db-0", "u-new", old, false), Keep},
		{"sticky deleted pod", held("db-1", "u-db1", old, true), Reserve},
		{"sticky failed pod", held("fail", "u-fail", old, true), Reserve},
		{"no pod identity", store.Allocation{Holder: store.Holder{ContainerID: "vm", Created: old}}, Keep},
		{"name without UID", store.Allocation{Holder: store.Holder{ContainerID: "x", PodName: "gone", PodNamespace: "ns", Created: old}}, Keep},
		{"reservation, StatefulSet wants it", resv("db-1", old), Keep},
		{"reservation, pod of that name exists", resv("db-0", now.Add(-3*time.Hour)), Keep},
		{"reservation, scaled below", resv("small-1", old), Free},
		{"reservation, StatefulSet gone", resv("web-0", old), Free},
		{"reservation, not a StatefulSet name", resv("solo", old), Free},
		{"reservation within grace", resv("solo", fresh), Keep},
		{"reservation expired", resv("db-1", now.Add(-3*time.Hour)), Free},
		{"claimed, pod deleted", claimed("virt-launcher-a", "vm1.net.net1", old), Reserve},
		{"claimed, pod running", claimed("run", "vm1.net.net1", old), Keep},
		{"claim's reservation, claim exists, long past the TTL", claimResv("vm1.net.net1", now.Add(-30*time.Hour)), Keep},
		{"claim's reservation, claim deleted", claimResv("vm2.net.net1", old), Free},
		{"claim's reservation, claim deleted a moment ago", claimResv("vm2.net.net1", fresh), Free},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := Decide(tt.a, w, now, p)
			if err != nil || v.Action != tt.want {
				t.Errorf("Decide = %v (%s), %v; want %v", v.Action, v.Reason, err, tt.want)
			}
		})
	}
	if v, _ := Decide(held("gone", "u-gone", fresh, false), w, now, p); !v.Recheck.Equal(fresh.Add(time.Minute)) {
		t.Errorf("recheck of an allocation within grace = %v, want %v", v.Recheck, fresh.Add(time.Minute))
	}
	broken := fakeWorld{err: errors.New("unreachable")}
	if v, err := Decide(held("gone", "u-gone", old, false), broken, now, p); err == nil || v.Action != Keep {
		t.Errorf("with the world unreadable: %v, %v; want keep and an error", v.Action, err)
	}
}

func TestStatefulSetOf(t *testing.T) {
	for name, want := range map[string]string{"db-0": "db/0", "my-db-12": "my-db/12", "db": "", "db-": "", "db-01": "", "db-x": "", "-3": ""} {
		set, n, ok := statefulSetOf(name)
		got := ""
		if ok {
			got = set + "/" + strconv.Itoa(n)
		}
		if got != want {
			t.Errorf("statefulSetOf(%q) = %q, want %q", name, got, want)
		}
	}
}
