package main

import (
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/plexus-cni/plexus/internal/testbed"
	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
	"github.com/plexus-cni/plexus/pkg/ipam/store/kubestore"
)

// ipamFixture: four NADs using plexus-ipam (three pools in two spaces) in
// a fresh namespace whose store holds a live pod's address, a gone pod's,
// a reservation, an allocation without its holder record, a holder record
// without its allocation, and an index that marks one address too many.
func ipamFixture(t *testing.T, env *testbed.Env) (ns, uid string) {
	t.Helper()
	ns = env.Namespace(t, "ctl-ipam")
	env.CreateNAD(t, ns, "pool-net", `{"cniVersion":"0.3.1","type":"macvlan","master":"plexus-absent0","ipam":{"type":"plexus-ipam","range":"198.51.100.0/24","range_start":"198.51.100.100","range_end":"198.51.100.109","network_name":"pool","sticky":true,"kubernetes":{"namespace":"`+ns+`"}}}`)
	env.CreateNAD(t, ns, "s4-net", `{"cniVersion":"0.3.0","type":"macvlan","master":"plexus-absent0","ipam":{"type":"plexus-ipam","range":"192.0.2.100-192.0.2.110/24","gateway":"192.0.2.1","kubernetes":{"namespace":"`+ns+`"}}}`)
	// Same range network and no network_name as s4-net: the same pool
	// (Whereabouts' 192.0.2.0-24), its range overlapping s4-net's.
	env.CreateNAD(t, ns, "s4-more", `{"cniVersion":"0.3.0","type":"macvlan","master":"plexus-absent0","ipam":{"type":"plexus-ipam","range":"192.0.2.105-192.0.2.120/24","kubernetes":{"namespace":"`+ns+`"}}}`)
	// Another range network in the same (default) space: a pool of its own.
	env.CreateNAD(t, ns, "t3-net", `{"cniVersion":"0.3.0","type":"macvlan","master":"plexus-absent0","ipam":{"type":"plexus-ipam","range":"203.0.113.0/28","kubernetes":{"namespace":"`+ns+`"}}}`)
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "alive", Namespace: ns},
		Spec: corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/none"}}}}
	created, err := env.Client.CoreV1().Pods(ns).Create(t.Context(), p, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	uid = string(created.UID)
	ks, err := kubestore.New(env.RESTConfig, kubestore.Options{Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	holder := func(cid, pod, podUID, node string) store.Holder {
		return store.Holder{ContainerID: cid, IfName: "net1", Network: "pool-net", PodNamespace: ns, PodName: pod, PodUID: podUID, Node: node, Created: at}
	}
	a := func(addr string, h store.Holder) store.Allocation {
		return store.Allocation{Space: "net:pool", Address: netip.MustParseAddr(addr), Holder: h}
	}
	err = ks.Import(t.Context(), []store.Allocation{
		a("198.51.100.100", holder("0123456789abcdef0123", "alive", uid, "node-a")),
		a("198.51.100.101", holder("fedcba9876543210fedc", "gone", "uid-gone", "node-b")),
		a("198.51.100.102", store.Reservation(holder("", "db-0", "", ""), at)),
		a("198.51.100.103", holder("c-norecord", "alive", uid, "node-a")),
		a("198.51.100.104", holder("c-dangling", "alive", uid, "node-a")),
		{Space: "net:", Address: netip.MustParseAddr("192.0.2.100"), Holder: holder("c-s4", "alive", uid, "node-a")},
	})
	if err != nil {
		t.Fatal(err)
	}
	res := func(r string) schema.GroupVersionResource {
		return schema.GroupVersionResource{Group: v1.Group, Version: v1.Version, Resource: r}
	}
	lost := store.Key{Space: "net:pool", ContainerID: "c-norecord", IfName: "net1"}
	if err := env.Dynamic.Resource(res(v1.ResourceIPAttachments)).Namespace(ns).Delete(t.Context(), "h"+store.HolderID(lost), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	name := store.SpaceID("net:pool") + ".198.51.100.104"
	if err := env.Dynamic.Resource(res(v1.ResourceIPAllocations)).Namespace(ns).Delete(t.Context(), name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// The index still marks .104 (its allocation was deleted behind the store's back).
	return ns, uid
}

func TestIPAMVerbs(t *testing.T) {
	env := testbed.Require(t)
	ns, uid := ipamFixture(t, env)
	kc := "--kubeconfig=" + env.Kubeconfig
	scope := []string{"-n", ns, "--store-namespace", ns, kc}
	spaces := regexp.MustCompile(` {2,}`)
	days := regexp.MustCompile(`\b[0-9]+d\b`)
	tests := []struct {
		golden string
		args   []string
	}{
		{"ipam-pools.text.golden", []string{"ipam", "pools"}},
		{"ipam-pools.json.golden", []string{"ipam", "pools", "-o", "json"}},
		{"ipam-show.text.golden", []string{"ipam", "show", "pool"}},
		{"ipam-show.yaml.golden", []string{"ipam", "show", "pool", "-o", "yaml"}},
		{"ipam-show-default.text.golden", []string{"ipam", "show", "default"}},
		{"ipam-show-pool.text.golden", []string{"ipam", "show", "192.0.2.0-24"}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			stdout, stderr, code := runCmd(t, "", append(tt.args, scope...)...)
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			out := normalize(stdout, ns, "NS", uid, "UID")
			if strings.HasSuffix(tt.golden, ".text.golden") { // columns depend on the namespace's length
				out = days.ReplaceAll(spaces.ReplaceAll(out, []byte("  ")), []byte("AGE"))
			}
			checkGolden(t, tt.golden, out)
		})
	}
	t.Run("unknown pool", func(t *testing.T) {
		_, stderr, code := runCmd(t, "", append([]string{"ipam", "show", "absent"}, scope...)...)
		if code != exitInvalid || !regexp.MustCompile(`pool "absent": not found \(pools: kubernetes/\S+ 192\.0\.2\.0-24, kubernetes/\S+ 203\.0\.113\.0-28, kubernetes/\S+ pool-198\.51\.100\.0-24\)`).MatchString(stderr) {
			t.Errorf("exit %d, stderr %q; want 1 listing the pools", code, stderr)
		}
	})
	t.Run("bad output", func(t *testing.T) {
		if _, _, code := runCmd(t, "", append([]string{"ipam", "pools", "-o", "xml"}, scope...)...); code != exitUsage {
			t.Errorf("exit %d, want %d", code, exitUsage)
		}
	})
}
