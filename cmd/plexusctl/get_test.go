package main

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/plexus-cni/plexus/internal/inspect"
	"github.com/plexus-cni/plexus/internal/testbed"
)

// getFixture: in a fresh namespace, web-1 (app=web) attached as requested,
// web-2 (app=web) missing one requested network with a failure event, and
// db (app=db, on node-b) without networks.
func getFixture(t *testing.T, env *testbed.Env) string {
	t.Helper()
	ns := env.Namespace(t, "ctl-get")
	entry := `{"name":"` + ns + `/macvlan-conf","interface":"net1","ips":["192.0.2.10"],"mac":"02:00:00:00:00:0a","dns":{}}`
	cluster := `{"name":"cbr0","interface":"eth0","ips":["10.244.0.9"],"mac":"0a:00:00:00:00:09","default":true,"dns":{}}`
	pods := []struct{ name, app, node, requested, status string }{
		{"web-1", "web", "node-a", "macvlan-conf", "[" + cluster + "," + entry + "]"},
		{"web-2", "web", "node-a", "macvlan-conf,sriov-net@fast", ""},
		{"db", "db", "node-b", "", ""},
	}
	for _, p := range pods {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: p.name, Namespace: ns, Labels: map[string]string{"app": p.app}, Annotations: map[string]string{}},
			Spec: corev1.PodSpec{NodeName: p.node, Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/none"}}}}
		if p.requested != "" {
			pod.Annotations["k8s.v1.cni.cncf.io/networks"] = p.requested
		}
		if p.status != "" {
			pod.Annotations["k8s.v1.cni.cncf.io/network-status"] = p.status
		}
		created, err := env.Client.CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.name != "web-2" {
			continue
		}
		at := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
		for i, msg := range []string{"an older failure", `Failed to create pod sandbox: plugin type="plexus" failed (add): networks[1]: network ` + ns + `/sriov-net: not found`} {
			ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "web-2." + string(rune('a'+i)), Namespace: ns},
				InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: "web-2", UID: created.UID, APIVersion: "v1"},
				Type:           corev1.EventTypeWarning, Reason: "FailedCreatePodSandBox", Message: msg,
				FirstTimestamp: at, LastTimestamp: metav1.NewTime(at.Add(time.Duration(i) * time.Minute)), Count: 1,
				Source: corev1.EventSource{Component: "kubelet", Host: "node-a"}}
			if _, err := env.Client.CoreV1().Events(ns).Create(t.Context(), ev, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return ns
}

func TestGetPods(t *testing.T) {
	env := testbed.Require(t)
	ns := getFixture(t, env)
	kc := "--kubeconfig=" + env.Kubeconfig
	t.Run("wide", func(t *testing.T) {
		stdout, stderr, code := runCmd(t, "", "get", "pods", "-n", ns, "-o", "wide", kc)
		if code != 0 || stderr != "" {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		// Columns depend on the namespace's length: collapse the padding.
		checkGolden(t, "get-pods-wide.text.golden", regexp.MustCompile(` {2,}`).ReplaceAll(normalize(stdout, ns, "NS"), []byte("  ")))
	})
	names := func(stdout string) string {
		var pods []inspect.Pod
		if err := json.Unmarshal([]byte(stdout), &pods); err != nil {
			t.Fatalf("%v in %q", err, stdout)
		}
		var out []string
		for _, p := range pods {
			out = append(out, p.Name)
		}
		return strings.Join(out, ",")
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"by name", []string{"get", "pods", "web-2", "db"}, "db,web-2"},
		{"label selector", []string{"get", "pods", "-l", "app=web"}, "web-1,web-2"},
		{"field selector", []string{"get", "pods", "--field-selector", "spec.nodeName=node-b"}, "db"},
		{"both selectors", []string{"get", "pods", "-l", "app=web", "--field-selector", "metadata.name!=web-1"}, "web-2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runCmd(t, "", append(tt.args, "-n", ns, "-o", "json", kc)...)
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			if got := names(stdout); got != tt.want {
				t.Errorf("pods %s, want %s", got, tt.want)
			}
		})
	}
	t.Run("no resources", func(t *testing.T) {
		stdout, stderr, code := runCmd(t, "", "get", "pods", "-n", ns, "-l", "app=none", kc)
		if code != 0 || stdout != "" || stderr != "No resources found in "+ns+" namespace.\n" {
			t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})
	t.Run("unknown pod", func(t *testing.T) {
		_, stderr, code := runCmd(t, "", "get", "pods", "absent", "-n", ns, kc)
		if code != exitInvalid || stderr != `plexusctl: pods "absent" not found`+"\n" {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
}

// TestGetPodsPaged lists 5 pods in pages of 2 on the real API server: all
// are listed, in 3 requests.
func TestGetPodsPaged(t *testing.T) {
	env := testbed.Require(t)
	ns := env.Namespace(t, "ctl-page")
	for _, name := range []string{"p1", "p2", "p3", "p4", "p5"} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/none"}}}}
		if _, err := env.Client.CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	stdout, stderr, code := runCmd(t, "", "get", "pods", "-n", ns, "--chunk-size", "2", "--kubeconfig", env.Kubeconfig)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, name := range []string{"p1", "p2", "p3", "p4", "p5"} {
		if !strings.Contains(stdout, "\n"+name+" ") {
			t.Errorf("%s not listed:\n%s", name, stdout)
		}
	}

	var pages atomic.Int32
	cfg := rest.CopyConfig(env.RESTConfig)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if strings.HasSuffix(r.URL.Path, "/namespaces/"+ns+"/pods") && r.URL.Query().Get("limit") == "2" {
				pages.Add(1)
			}
			return rt.RoundTrip(r)
		})
	})
	c, err := clients(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.ChunkSize = 2
	pods, err := inspect.Pods(t.Context(), c, inspect.PodQuery{Namespace: ns})
	if err != nil || len(pods) != 5 || pages.Load() != 3 {
		t.Errorf("%d pods in %d pages of 2 (err %v), want 5 in 3", len(pods), pages.Load(), err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
