package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/plexus-cni/plexus/internal/cnierr"
	"github.com/plexus-cni/plexus/internal/config"
	"github.com/plexus-cni/plexus/internal/kube"
	"github.com/plexus-cni/plexus/pkg/nad"
	"github.com/plexus-cni/plexus/pkg/netselect"
)

// apiServer is a fake kube-apiserver on 127.0.0.1 for the plugin's real
// client: each read answers what the test case says.
type apiServer struct {
	pod    http.HandlerFunc
	nads   map[string]http.HandlerFunc // "ns/name"; absent: 404 NotFound
	status http.HandlerFunc            // PATCH pods/status
	// closeListener stops accepting connections.
	closeListener func()
}

const nadPrefix = "/apis/" + nad.Group + "/" + nad.Version + "/namespaces/"

func (a *apiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case r.Method == http.MethodGet && p == "/api/v1/namespaces/ns/pods/pod":
		a.pod(w, r)
	case r.Method == http.MethodPatch && p == "/api/v1/namespaces/ns/pods/pod/status":
		a.status(w, r)
	case r.Method == http.MethodPost && p == "/api/v1/namespaces/ns/events":
		writeJSON(w, http.StatusCreated, &corev1.Event{TypeMeta: metav1.TypeMeta{Kind: "Event", APIVersion: "v1"}})
	case r.Method == http.MethodGet && strings.HasPrefix(p, nadPrefix):
		ns, name, _ := strings.Cut(strings.TrimPrefix(p, nadPrefix), "/"+nad.Resource+"/")
		if h := a.nads[ns+"/"+name]; h != nil {
			h(w, r)
			return
		}
		answer(apierrors.NewNotFound(schema.GroupResource{Group: nad.Group, Resource: nad.Resource}, name))(w, r)
	default:
		answer(apierrors.NewNotFound(schema.GroupResource{}, p))(w, r)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// answer replies with the API error, as the API server encodes it.
func answer(err *apierrors.StatusError) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		st := err.ErrStatus
		st.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
		writeJSON(w, int(st.Code), st)
	}
}

func object(v any) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, v) }
}

func nadObject(ns, name, config string) http.HandlerFunc {
	return object(&nad.NetworkAttachmentDefinition{
		TypeMeta:   metav1.TypeMeta{Kind: "NetworkAttachmentDefinition", APIVersion: nad.Group + "/" + nad.Version},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       nad.Spec{Config: config},
	})
}

// hang answers nothing until the client gives up.
func hang(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

// refuse makes the API server go away: it stops accepting connections and
// drops this one unanswered, so the client's retry of its GET is refused.
func (a *apiServer) refuse(w http.ResponseWriter, _ *http.Request) {
	a.closeListener()
	if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
		_ = conn.Close()
	}
}

// refusingHost returns an address on 127.0.0.1 where nothing listens.
func refusingHost(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := "http://" + l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return host
}

var (
	podsGR   = schema.GroupResource{Resource: "pods"}
	goodNAD  = `{"cniVersion":"1.0.0","type":"macvlan","master":"plexus-x"}`
	groupRes = schema.GroupResource{Group: nad.Group, Resource: nad.Resource}
)

type errorCase struct {
	name        string
	command     string                                      // default ADD
	annotations map[string]string                           // the pod's
	conf        func(c map[string]any, dir string)          // edits the plexus configuration
	stdin       string                                      // replaces the configuration
	cniArgs     string                                      // replaces CNI_ARGS
	api         func(a *apiServer)                          // edits the API server's answers
	setup       func(t *testing.T, dir string, f *fakeExec) // anything else
	down        bool                                        // the API server refuses connections
	timeout     time.Duration                               // the client's request timeout
	wantCode    uint
	wantMsg     []string
}

// errorTable is docs/errors.md's table, condition by condition.
var errorTable = []errorCase{
	{name: "config not JSON", stdin: `{"cniVersion":"1.0.0",`, wantCode: 6, wantMsg: []string{"cannot decode the plexus configuration"}},
	{name: "config value invalid", conf: func(c map[string]any, _ string) { c["attachConcurrency"] = -1 },
		wantCode: 7, wantMsg: []string{"attachConcurrency", `"-1"`}},
	{name: "CNI_ARGS malformed", cniArgs: "K8S_POD_NAME", wantCode: 4, wantMsg: []string{"K8S_POD_NAME"}},
	{name: "NAD not found", annotations: nets("missing"), wantCode: cnierr.NetworkNotFound,
		wantMsg: []string{"networks[0]", "ns/missing", "not found"}},
	{name: "NAD read timeout", annotations: nets("busy"), api: nadAnswers("busy", answer(apierrors.NewTimeoutError("etcd is slow", 1))),
		wantCode: 11, wantMsg: []string{"ns/busy", "etcd is slow"}},
	{name: "NAD read 429", annotations: nets("busy"), api: nadAnswers("busy", answer(apierrors.NewTooManyRequests("too many requests", 1))),
		wantCode: 11, wantMsg: []string{"ns/busy", "too many requests"}},
	{name: "NAD read 500", annotations: nets("busy"), api: nadAnswers("busy", answer(apierrors.NewInternalError(fmt.Errorf("etcd: leader changed")))),
		wantCode: 11, wantMsg: []string{"ns/busy", "leader changed"}},
	{name: "NAD read 503", annotations: nets("busy"), api: nadAnswers("busy", answer(apierrors.NewServiceUnavailable("shutting down"))),
		wantCode: 11, wantMsg: []string{"ns/busy", "shutting down"}},
	{name: "NAD read connection refused", annotations: nets("busy"), api: func(a *apiServer) { a.nads["ns/busy"] = a.refuse },
		wantCode: 11, wantMsg: []string{"ns/busy", "connection refused"}},
	{name: "NAD read client timeout", annotations: nets("busy"), api: nadAnswers("busy", hang), timeout: time.Second,
		wantCode: 11, wantMsg: []string{"ns/busy"}},
	{name: "NAD read forbidden", annotations: nets("busy"), api: nadAnswers("busy", answer(apierrors.NewForbidden(groupRes, "busy", fmt.Errorf("RBAC")))),
		wantCode: 7, wantMsg: []string{"ns/busy", "forbidden"}},
	{name: "NAD config invalid", annotations: nets("bad"), api: nadAnswers("bad", nadObject("ns", "bad", `{"cniVersion":"1.0.0"}`)),
		wantCode: 7, wantMsg: []string{"ns/bad", "spec.config"}},
	{name: "default-network NAD not found", annotations: map[string]string{netselect.DefaultNetworkAnnotation: "missing"},
		wantCode: cnierr.NetworkNotFound, wantMsg: []string{"kube-system/missing", "not found"}},
	{name: "clusterNetwork not found", conf: func(c map[string]any, _ string) { c["clusterNetwork"] = "missing" },
		wantCode: cnierr.NetworkNotFound, wantMsg: []string{`clusterNetwork "missing"`, "kube-system/missing", "not found"}},
	{name: "clusterNetwork path not found", conf: func(c map[string]any, dir string) { c["clusterNetwork"] = filepath.Join(dir, "absent.conf") },
		wantCode: cnierr.NetworkNotFound, wantMsg: []string{"clusterNetwork", "absent.conf"}},
	{name: "clusterNetwork NAD read 429", conf: func(c map[string]any, _ string) { c["clusterNetwork"] = "busy" },
		api: func(a *apiServer) {
			a.nads["kube-system/busy"] = answer(apierrors.NewTooManyRequests("too many requests", 1))
		},
		wantCode: 11, wantMsg: []string{`clusterNetwork "busy"`, "kube-system/busy"}},
	{name: "pod not found", api: func(a *apiServer) { a.pod = answer(apierrors.NewNotFound(podsGR, "pod")) },
		wantCode: 11, wantMsg: []string{"pod ns/pod"}},
	{name: "pod read 500", api: func(a *apiServer) { a.pod = answer(apierrors.NewInternalError(fmt.Errorf("etcd down"))) },
		wantCode: 11, wantMsg: []string{"pod ns/pod", "etcd down"}},
	{name: "API server refuses connections", down: true, wantCode: 11, wantMsg: []string{"pod ns/pod"}},
	{name: "pod UID mismatch", cniArgs: k8sArgs("uid-of-an-earlier-pod"), wantCode: 3, wantMsg: []string{"ns/pod", "uid-of-an-earlier-pod"}},
	{name: "delegate error keeps its code", annotations: nets("a"),
		setup: func(_ *testing.T, _ string, f *fakeExec) {
			f.failWith = map[string]error{"ADD net1 a": types.NewError(101, "master plexus-x not found", "")}
		},
		wantCode: 101, wantMsg: []string{"net1 (ns/a)", "master plexus-x not found"}},
	{name: "readiness indicator timeout",
		conf: func(c map[string]any, dir string) {
			c["readinessindicatorfile"], c["readinessTimeoutSeconds"] = filepath.Join(dir, "never"), 1
		},
		wantCode: 11, wantMsg: []string{"readinessindicatorfile", "never"}},
	{name: "status write fails", annotations: nets("a"), api: func(a *apiServer) { a.status = answer(apierrors.NewServiceUnavailable("shutting down")) },
		wantCode: 11, wantMsg: []string{"pod ns/pod", "network-status", "shutting down"}},
	{name: "record corrupt", command: "DEL",
		setup: func(t *testing.T, dir string, _ *fakeExec) {
			rec := filepath.Join(dir, "state", "attachments", "c0ffee.json")
			if err := os.MkdirAll(filepath.Dir(rec), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(rec, []byte(`{"version":1,"contai`), 0o600); err != nil {
				t.Fatal(err)
			}
		},
		wantCode: 6, wantMsg: []string{"c0ffee.json"}},
}

func nets(names ...string) map[string]string {
	return map[string]string{netselect.NetworksAnnotation: strings.Join(names, ",")}
}

func nadAnswers(name string, h http.HandlerFunc) func(*apiServer) {
	return func(a *apiServer) { a.nads["ns/"+name] = h }
}

func k8sArgs(uid string) string {
	return "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=pod;K8S_POD_INFRA_CONTAINER_ID=c0ffee;K8S_POD_UID=" + uid
}

// TestErrorCodes runs each condition of the error table through plugin.Do
// with the real API client against a fake API server, and checks the CNI
// error the runtime (or plexusd's client) receives.
func TestErrorCodes(t *testing.T) {
	for _, tc := range errorTable {
		t.Run(tc.name, func(t *testing.T) {
			e := runErrorCase(t, tc)
			if e == nil {
				t.Fatalf("%s succeeded, want code %d", tc.command, tc.wantCode)
			}
			if e.Code != tc.wantCode {
				t.Errorf("code = %d, want %d (%s)", e.Code, tc.wantCode, e.Msg)
			}
			for _, part := range tc.wantMsg {
				if !strings.Contains(e.Msg, part) {
					t.Errorf("message %q does not name %q", e.Msg, part)
				}
			}
		})
	}
}

func runErrorCase(t *testing.T, tc errorCase) *types.Error {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "10-cluster.conf"), []byte(`{"cniVersion":"1.0.0","name":"cluster","type":"bridge"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "pod", UID: "uid-1", Annotations: tc.annotations}}
	api := &apiServer{pod: object(pod), status: object(pod), nads: map[string]http.HandlerFunc{"ns/a": nadObject("ns", "a", goodNAD)}}
	if tc.api != nil {
		tc.api(api)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	api.closeListener = func() { _ = srv.Listener.Close() }
	host := srv.URL
	if tc.down {
		host = refusingHost(t)
	}
	exec := &fakeExec{}
	if tc.setup != nil {
		tc.setup(t, dir, exec)
	}
	p := &Plugin{Exec: exec, NewAPI: func(c *config.NetConf, _ string) (API, error) {
		return kube.NewFromConfig(&kube.Config{Host: host}, kube.Options{Timeout: tc.timeout, ConfDir: c.ConfDir})
	}}
	conf := map[string]any{"cniVersion": "1.0.0", "name": "plexus", "type": "plexus", "kubeconfig": "/unused",
		"clusterNetwork": filepath.Join(dir, "10-cluster.conf"), "cniDir": filepath.Join(dir, "state"), "confDir": dir}
	if tc.conf != nil {
		tc.conf(conf, dir)
	}
	stdin, err := json.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	if tc.stdin != "" {
		stdin = []byte(tc.stdin)
	}
	args := &skel.CmdArgs{ContainerID: "c0ffee", Netns: "/run/netns/fake", IfName: "eth0", Args: k8sArgs("uid-1"), StdinData: stdin}
	if tc.cniArgs != "" {
		args.Args = tc.cniArgs
	}
	command := tc.command
	if command == "" {
		command = "ADD"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, _, err = p.Do(ctx, command, args)
	return cnierr.ToCNI(err)
}
