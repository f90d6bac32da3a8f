package inspect

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"

	nadfake "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/metadata"
	clienttesting "k8s.io/client-go/testing"

	"github.com/plexus-cni/plexus/pkg/nad"
)

// page returns the items of namespace ns ("" for all) from Continue (an
// index) on, at most Limit of them, and the next Continue: paging as the
// API server does it, which the fakes do not.
func page[T metav1.Object](items []T, ns string, o metav1.ListOptions) ([]T, metav1.ListMeta) {
	var in []T
	for _, it := range items {
		if ns == "" || it.GetNamespace() == ns {
			in = append(in, it)
		}
	}
	start, _ := strconv.Atoi(o.Continue)
	end := len(in)
	var meta metav1.ListMeta
	if l := int(o.Limit); l > 0 && start+l < end {
		end = start + l
		meta.Continue = strconv.Itoa(end)
	}
	return in[start:end], meta
}

// podsPager is a reactor of the fake clientset that lists pods in pages.
func podsPager(pods []*corev1.Pod) clienttesting.ReactionFunc {
	return func(a clienttesting.Action) (bool, runtime.Object, error) {
		la := a.(clienttesting.ListActionImpl)
		items, meta := page(pods, la.GetNamespace(), la.ListOptions)
		l := &corev1.PodList{ListMeta: meta}
		for _, p := range items {
			l.Items = append(l.Items, *p)
		}
		return true, l, nil
	}
}

// metaPods is a metadata client serving pod metadata in pages (the fake
// metadata client drops Limit and Continue); calls records the namespace
// of every list. Only List is implemented.
type metaPods struct {
	metadata.ResourceInterface
	items []*metav1.PartialObjectMetadata
	ns    string
	calls *[]string
}

func (m *metaPods) Resource(schema.GroupVersionResource) metadata.Getter { return m }

func (m *metaPods) Namespace(ns string) metadata.ResourceInterface {
	return &metaPods{items: m.items, ns: ns, calls: m.calls}
}

func (m *metaPods) List(_ context.Context, o metav1.ListOptions) (*metav1.PartialObjectMetadataList, error) {
	*m.calls = append(*m.calls, m.ns)
	items, meta := page(m.items, m.ns, o)
	l := &metav1.PartialObjectMetadataList{ListMeta: meta}
	for _, it := range items {
		l.Items = append(l.Items, *it)
	}
	return l, nil
}

func testPod(ns, name, status string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + ns + "-" + name)},
		Spec: corev1.PodSpec{NodeName: "node-a"}}
	if status != "" {
		p.Annotations = map[string]string{"k8s.v1.cni.cncf.io/network-status": status}
	}
	return p
}

func TestPodsPaged(t *testing.T) {
	var pods []*corev1.Pod
	for i := range 5 {
		pods = append(pods, testPod("ns", fmt.Sprintf("p%d", 4-i), ""))
	}
	cs := fake.NewClientset()
	cs.PrependReactor("list", "pods", podsPager(pods))
	got, err := Pods(t.Context(), Cluster{Client: cs, ChunkSize: 2}, PodQuery{Namespace: "ns"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range got {
		names = append(names, p.Name)
	}
	if fmt.Sprint(names) != "[p0 p1 p2 p3 p4]" {
		t.Errorf("pods = %v, want p0..p4 in order", names)
	}
	var limits []int64
	for _, a := range cs.Actions() {
		limits = append(limits, a.(clienttesting.ListActionImpl).ListOptions.Limit)
	}
	if fmt.Sprint(limits) != "[2 2 2]" {
		t.Errorf("list calls with limits %v, want three pages of 2", limits)
	}
}

// describeFixture: NAD ns-a/macvlan, and pods in three namespaces, two
// of them attached to it (one twice).
func describeFixture(t *testing.T) (Cluster, *metaPods, *fake.Clientset) {
	t.Helper()
	// Created through the client: the fake's tracker files objects given to
	// NewSimpleClientset under a resource name the client never asks for.
	nads := nadfake.NewSimpleClientset()
	_, err := nads.K8sCniCncfIoV1().NetworkAttachmentDefinitions("ns-a").Create(t.Context(), &nad.NetworkAttachmentDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "macvlan", Namespace: "ns-a"},
		Spec:       nad.Spec{Config: `{"cniVersion":"1.0.0","type":"macvlan","master":"eth0"}`},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	entry := func(net, ifname string) string {
		return `{"name":"` + net + `","interface":"` + ifname + `","ips":["192.0.2.1"],"dns":{}}`
	}
	var metas []*metav1.PartialObjectMetadata
	add := func(p *corev1.Pod) {
		metas = append(metas, &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: p.ObjectMeta})
	}
	add(testPod("ns-a", "a1", "["+entry("cbr0", "eth0")+","+entry("ns-a/macvlan", "net1")+"]"))
	add(testPod("ns-a", "a2", "["+entry("ns-a/other", "net1")+"]"))
	add(testPod("ns-a", "a3", "not json"))
	add(testPod("ns-b", "b1", "["+entry("ns-a/macvlan", "net1")+","+entry("ns-a/macvlan", "net2")+"]"))
	add(testPod("ns-c", "c1", ""))
	meta := &metaPods{items: metas, calls: new([]string)}
	cs := fake.NewClientset()
	return Cluster{Client: cs, NADs: nads, Metadata: meta, ChunkSize: 2}, meta, cs
}

func TestDescribeListsPodsOnce(t *testing.T) {
	all := []string{"", "", ""}     // five pods in pages of 2, every namespace
	nsA := []string{"ns-a", "ns-a"} // three pods of ns-a in pages of 2
	tests := []struct {
		name      string
		opts      DescribeOptions
		wantCalls []string // namespace of each pod list call
		wantPods  string
	}{
		{"no isolation: every namespace, once", DescribeOptions{}, all,
			"[ns-a/a1 net1 ns-b/b1 net1 ns-b/b1 net2]"},
		{"isolation: the network's namespace", DescribeOptions{NamespaceIsolation: true, GlobalNamespaces: []string{"default"}}, nsA,
			"[ns-a/a1 net1]"},
		{"isolation, global namespace: every namespace", DescribeOptions{NamespaceIsolation: true, GlobalNamespaces: []string{"ns-a"}}, all,
			"[ns-a/a1 net1 ns-b/b1 net1 ns-b/b1 net2]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, meta, cs := describeFixture(t)
			n, err := Describe(t.Context(), c, "ns-a", "macvlan", tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			var pods []string
			for _, a := range n.Pods {
				pods = append(pods, a.Pod+" "+a.Interface)
			}
			if got := fmt.Sprint(pods); got != tt.wantPods {
				t.Errorf("pods = %s, want %s", got, tt.wantPods)
			}
			if got := *meta.calls; !slices.Equal(got, tt.wantCalls) {
				t.Errorf("pod list calls in namespaces %q, want %q", got, tt.wantCalls)
			}
			if a := cs.Actions(); len(a) != 0 {
				t.Errorf("whole pods were read: %v", a)
			}
		})
	}
}
