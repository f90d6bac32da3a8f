package inspect

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
)

func TestMatchRequested(t *testing.T) {
	const status = `[{"name":"cbr0","interface":"eth0","default":true,"dns":{}},` +
		`{"name":"app/a","interface":"net1","dns":{}},{"name":"app/a","interface":"fast","dns":{}},{"name":"cfg-default","interface":"net3","dns":{}}]`
	tests := []struct {
		name          string
		requested     string
		wantRequested []bool
		wantMissing   []string
		wantError     string
	}{
		{"none requested", "", []bool{false, false, false, false}, nil, ""},
		{"all attached, explicit name wins its entry", "a,a@fast", []bool{false, true, true, false}, nil, ""},
		{"missing network and interface", "a,other/b,a@net9", []bool{false, true, false, false}, []string{"other/b", "app/a@net9"}, ""},
		{"one entry answers one selection", "a,a,a", []bool{false, true, true, false}, []string{"app/a"}, ""},
		{"invalid annotation", "a,", []bool{false, false, false, false}, nil,
			"annotation k8s.v1.cni.cncf.io/networks: networks[1]: empty item (a stray or trailing ',')"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPod("app", "p", status)
			p.Annotations["k8s.v1.cni.cncf.io/networks"] = tt.requested
			got := podOf(p)
			if diff := cmp.Diff(tt.wantRequested, got.requested); diff != "" {
				t.Errorf("requested (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantMissing, got.Missing); diff != "" {
				t.Errorf("missing (-want +got):\n%s", diff)
			}
			if got.RequestError != tt.wantError {
				t.Errorf("request error %q, want %q", got.RequestError, tt.wantError)
			}
		})
	}
}

func warning(p *corev1.Pod, uid, reason, msg string, at time.Time) *corev1.Event {
	return &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: fmt.Sprintf("%s.%d", p.Name, at.Unix())},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, UID: p.UID},
		Type:           corev1.EventTypeWarning, Reason: reason, Message: msg, LastTimestamp: metav1.NewTime(at)}
}

func TestPodsLastFailure(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	broken := testPod("app", "broken", "")
	broken.Annotations = map[string]string{"k8s.v1.cni.cncf.io/networks": "macvlan-conf,sriov"}
	fine := testPod("app", "fine", `[{"name":"cbr0","interface":"eth0","ips":["10.244.0.9"],"default":true,"dns":{}}]`)
	newest := warning(broken, "", "FailedCreatePodSandBox",
		"Failed to create pod sandbox: plugin type=\"plexus\" failed (add): networks[1]: network app/sriov:\n not found", t0.Add(time.Minute))
	older := warning(broken, "", "FailedCreatePodSandBox", "older", t0)
	normal := warning(broken, "", "Scheduled", "not a failure", t0.Add(time.Hour))
	normal.Type = corev1.EventTypeNormal
	previous := warning(fine, "", "BackOff", "an earlier pod of that name", t0.Add(time.Hour))
	previous.InvolvedObject.UID = "uid-of-a-deleted-pod"
	cs := fake.NewClientset(broken, fine, newest, older, normal, previous)

	pods, err := Pods(t.Context(), Cluster{Client: cs}, PodQuery{Namespace: "app", Events: true})
	if err != nil {
		t.Fatal(err)
	}
	if pods[1].LastFailure != nil {
		t.Errorf("fine has last failure %+v, which belongs to an earlier pod", pods[1].LastFailure)
	}
	var b bytes.Buffer
	if err := WritePodsTable(&b, pods, TableOptions{Wide: true}); err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"POD     INTERFACE  NETWORK           IPS         MAC  DEFAULT  NODE    REQUESTED  LAST FAILURE",
		`broken  -          app/macvlan-conf  -           -    -        node-a  missing    FailedCreatePodSandBox: Failed to create pod sandbox: plugin type="plexus" failed (add): networks[1]: network app/sriov: not found`,
		"broken  -          app/sriov         -           -    -        node-a  missing    -",
		"fine    eth0       cbr0              10.244.0.9  -    yes      node-a  -          -",
		""}, "\n")
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("wide table (-want +got):\n%s", diff)
	}
	var selectors []string
	for _, a := range cs.Actions() {
		if a.GetVerb() == "list" && a.GetResource().Resource == "events" {
			terms := strings.Split(a.(clienttesting.ListActionImpl).ListOptions.FieldSelector, ",")
			slices.Sort(terms)
			selectors = append(selectors, strings.Join(terms, ","))
		}
	}
	if fmt.Sprint(selectors) != "[involvedObject.kind=Pod,type=Warning]" {
		t.Errorf("event lists %q, want one of the pods' Warning events", selectors)
	}
}

func TestPodsByName(t *testing.T) {
	cs := fake.NewClientset(testPod("app", "a", ""), testPod("app", "b", ""))
	pods, err := Pods(t.Context(), Cluster{Client: cs}, PodQuery{Namespace: "app", Names: []string{"b"}, Events: true})
	if err != nil || len(pods) != 1 || pods[0].Name != "b" {
		t.Fatalf("pods %+v, err %v; want b", pods, err)
	}
	for _, a := range cs.Actions() {
		if a.GetResource().Resource == "pods" && a.GetVerb() != "get" {
			t.Errorf("pods were %sed, want one get", a.GetVerb())
		}
		if la, ok := a.(clienttesting.ListActionImpl); ok && la.GetResource().Resource == "events" &&
			!strings.Contains(la.ListOptions.FieldSelector, "involvedObject.name=b") {
			t.Errorf("events listed with %q, want narrowed to pod b", la.ListOptions.FieldSelector)
		}
	}
	if _, err := Pods(t.Context(), Cluster{Client: cs}, PodQuery{Namespace: "app", Names: []string{"c"}}); err == nil || err.Error() != `pods "c" not found` {
		t.Errorf("missing pod: err %v", err)
	}
}

func TestPodsEmptyIsAList(t *testing.T) {
	pods, err := Pods(t.Context(), Cluster{Client: fake.NewClientset()}, PodQuery{Namespace: "none"})
	if err != nil || pods == nil || len(pods) != 0 {
		t.Errorf("pods %#v, err %v; want an empty list (JSON [])", pods, err)
	}
}
