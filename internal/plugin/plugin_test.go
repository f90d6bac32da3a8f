package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-cni/plexus/internal/cnierr"
	"github.com/plexus-cni/plexus/internal/config"
	"github.com/plexus-cni/plexus/internal/kube"
	"github.com/plexus-cni/plexus/pkg/nad"
	"github.com/plexus-cni/plexus/pkg/netselect"
)

// fakeExec plays every delegate: it records "CMD ifname network" and
// answers ADD with a one-interface result; fail maps such a key to an error
// message, failWith to the error the delegate returns.
type fakeExec struct {
	mu       sync.Mutex
	calls    []string
	fail     map[string]string
	failWith map[string]error
	stdin    map[string][]byte // the first stdin of each key
}

func (f *fakeExec) ExecPlugin(_ context.Context, _ string, stdin []byte, environ []string) ([]byte, error) {
	env := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	var conf struct {
		Name       string `json:"name"`
		CNIVersion string `json:"cniVersion"`
	}
	_ = json.Unmarshal(stdin, &conf)
	key := env["CNI_COMMAND"] + " " + env["CNI_IFNAME"] + " " + conf.Name
	f.mu.Lock()
	f.calls = append(f.calls, key)
	if f.stdin == nil {
		f.stdin = map[string][]byte{}
	}
	if _, seen := f.stdin[key]; !seen {
		f.stdin[key] = stdin
	}
	msg, fail := f.fail[key]
	failErr := f.failWith[key]
	n := len(f.calls)
	f.mu.Unlock()
	if failErr != nil {
		return nil, failErr
	}
	if fail {
		return nil, &cniError{msg}
	}
	if env["CNI_COMMAND"] != "ADD" {
		return nil, nil
	}
	return fmt.Appendf(nil, `{"cniVersion":%q,"interfaces":[{"name":%q,"mac":"02:00:00:00:00:01","sandbox":%q}],
		"ips":[{"address":"192.0.2.%d/24","interface":0}]}`, conf.CNIVersion, env["CNI_IFNAME"], env["CNI_NETNS"], n), nil
}

type cniError struct{ msg string }

func (e *cniError) Error() string { return e.msg }

func (f *fakeExec) FindInPath(plugin string, _ []string) (string, error) {
	return "/fake/" + plugin, nil
}
func (f *fakeExec) Decode(b []byte) (version.PluginInfo, error) { return version.All, nil }

func (f *fakeExec) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// fakeAPI serves one pod and NADs from memory.
type fakeAPI struct {
	pod       *corev1.Pod
	nads      map[string]string // "ns/name" → spec.config
	resources map[string]string // "ns/name" → resourceName annotation
	status    string
	statusErr error
	events    []kube.Event
}

func (a *fakeAPI) NAD(_ context.Context, ns, name string) (*nad.Delegate, error) {
	cfg, ok := a.nads[ns+"/"+name]
	if !ok {
		return nil, fmt.Errorf("NetworkAttachmentDefinition %s/%s: %w", ns, name, nad.ErrNotFound)
	}
	d, err := nad.Parse([]byte(cfg), name)
	if err == nil {
		d.ResourceName = a.resources[ns+"/"+name]
	}
	return d, err
}

func (a *fakeAPI) GetPod(_ context.Context, ns, name string) (*corev1.Pod, error) {
	if a.pod == nil || a.pod.Namespace != ns || a.pod.Name != name {
		return nil, apierrors.NewNotFound(corev1.Resource("pods"), name)
	}
	return a.pod, nil
}

func (a *fakeAPI) SetNetworkStatus(_ context.Context, _, _, value string) error {
	if a.statusErr != nil {
		return a.statusErr
	}
	a.status = value
	return nil
}

func (a *fakeAPI) RecordEvents(_ context.Context, _ *corev1.Pod, ev []kube.Event) error {
	a.events = append(a.events, ev...)
	return nil
}

type fixture struct {
	t    *testing.T
	dir  string
	exec *fakeExec
	api  *fakeAPI
	p    *Plugin
}

func newFixture(t *testing.T, annotations map[string]string) *fixture {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "10-cluster.conf"), []byte(`{"cniVersion":"1.0.0","name":"cluster","type":"bridge"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, dir: dir, exec: &fakeExec{}, api: &fakeAPI{
		pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "pod", UID: "uid-1", Annotations: annotations}},
		nads: map[string]string{
			"ns/a": `{"cniVersion":"0.4.0","type":"macvlan","ipam":{"type":"host-local","subnet":"192.0.2.0/24"}}`,
			"ns/b": `{"cniVersion":"1.0.0","plugins":[{"type":"macvlan"},{"type":"tuning"}]}`,
		},
	}}
	f.p = &Plugin{Exec: f.exec, NewAPI: func(*config.NetConf, string) (API, error) { return f.api, nil }}
	return f
}

func (f *fixture) args(uid string) *skel.CmdArgs {
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"plexus","type":"plexus","kubeconfig":"/unused",
		"clusterNetwork":%q,"cniDir":%q,"deviceInfoDir":%q,"attachConcurrency":1}`,
		filepath.Join(f.dir, "10-cluster.conf"), filepath.Join(f.dir, "state"), f.devInfoDir())
	return &skel.CmdArgs{
		ContainerID: "c0ffee", Netns: "/run/netns/fake", IfName: "eth0",
		Args:      "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=pod;K8S_POD_INFRA_CONTAINER_ID=c0ffee;K8S_POD_UID=" + uid,
		StdinData: []byte(conf),
	}
}

func (f *fixture) add(uid string) error {
	r, err := f.p.load(f.args(uid))
	if err != nil {
		return err
	}
	_, err = f.p.add(context.Background(), r)
	return err
}

func (f *fixture) del() error {
	r, err := f.p.load(f.args("uid-1"))
	if err != nil {
		return err
	}
	return f.p.del(context.Background(), r)
}

func (f *fixture) devInfoDir() string { return filepath.Join(f.dir, "devinfo") }

func (f *fixture) recordPath() string {
	return filepath.Join(f.dir, "state", "attachments", "c0ffee.json")
}

func TestAddWritesStatusEventsAndRecord(t *testing.T) {
	f := newFixture(t, map[string]string{netselect.NetworksAnnotation: "a,b"})
	if err := f.add("uid-1"); err != nil {
		t.Fatal(err)
	}
	want := []string{"ADD eth0 cluster", "ADD net1 a", "ADD net2 b", "ADD net2 b"}
	if got := f.exec.seen(); !slices.Equal(got, want) {
		t.Fatalf("delegate calls = %v, want %v", got, want)
	}
	var st []map[string]any
	if err := json.Unmarshal([]byte(f.api.status), &st); err != nil || len(st) != 3 {
		t.Fatalf("network-status = %s (%v)", f.api.status, err)
	}
	if st[0]["name"] != "cluster" || st[0]["default"] != true || st[1]["name"] != "ns/a" || st[2]["interface"] != "net2" {
		t.Fatalf("network-status = %s", f.api.status)
	}
	if len(f.api.events) != 3 || f.api.events[1].Reason != "AddedInterface" {
		t.Fatalf("events = %+v", f.api.events)
	}
	rec, err := os.ReadFile(f.recordPath())
	if err != nil || !strings.Contains(string(rec), `"subnet":"192.0.2.0/24"`) {
		t.Fatalf("record %s lacks the IPAM config: %s (%v)", f.recordPath(), rec, err)
	}
}

// phaseLog records what a PhaseObserver hears.
type phaseLog struct {
	mu  sync.Mutex
	got []string
}

func (l *phaseLog) ObservePhase(phase, plugin string, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if d < 0 {
		phase += " (negative)"
	}
	l.got = append(l.got, strings.TrimSpace(phase+" "+plugin))
}

// An ADD reports each of its phases once, and each attachment's delegates
// under the type of its first plugin.
func TestAddReportsItsPhases(t *testing.T) {
	f := newFixture(t, map[string]string{netselect.NetworksAnnotation: "a,b"})
	phases := &phaseLog{}
	f.p.Phases = phases
	if err := f.add("uid-1"); err != nil {
		t.Fatal(err)
	}
	slices.Sort(phases.got)
	want := []string{"delegate bridge", "delegate macvlan", "delegate macvlan", "events", "plan", "record", "status"}
	if !slices.Equal(phases.got, want) {
		t.Errorf("phases %v, want %v", phases.got, want)
	}
}

func TestAddFailureRollsBackAndForgets(t *testing.T) {
	f := newFixture(t, map[string]string{netselect.NetworksAnnotation: "a,b"})
	f.exec.fail = map[string]string{"ADD net2 b": "no such master"}
	err := f.add("uid-1")
	if err == nil || !strings.Contains(err.Error(), "net2 (ns/b)") || !strings.Contains(err.Error(), "no such master") {
		t.Fatalf("err = %v", err)
	}
	want := []string{"ADD eth0 cluster", "ADD net1 a", "ADD net2 b", "DEL net2 b", "DEL net2 b", "DEL net1 a", "DEL eth0 cluster"}
	if got := f.exec.seen(); !slices.Equal(got, want) {
		t.Fatalf("delegate calls = %v, want %v", got, want)
	}
	if _, err := os.Stat(f.recordPath()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("record left after a complete rollback: %v", err)
	}
	if f.api.status != "" {
		t.Fatal("network-status written for a failed ADD")
	}
}

func TestStatusWriteFailureRollsBack(t *testing.T) {
	f := newFixture(t, map[string]string{netselect.NetworksAnnotation: "a"})
	f.api.statusErr = apierrors.NewServiceUnavailable("apiserver unavailable")
	err := f.add("uid-1")
	if cnierr.Code(err) != cnierr.TryAgainLater {
		t.Fatalf("err = %v (code %d), want code 11", err, cnierr.Code(err))
	}
	if got := f.exec.seen(); !slices.Contains(got, "DEL net1 a") || !slices.Contains(got, "DEL eth0 cluster") {
		t.Fatalf("no rollback: %v", got)
	}
}

func TestUIDMismatch(t *testing.T) {
	f := newFixture(t, nil)
	err := f.add("uid-of-an-earlier-pod")
	if cnierr.Code(err) != cnierr.UnknownContainer || !strings.Contains(err.Error(), "uid-of-an-earlier-pod") {
		t.Fatalf("err = %v (code %d)", err, cnierr.Code(err))
	}
	// Static pods are exempt.
	f.api.pod.Annotations = map[string]string{"kubernetes.io/config.source": "file"}
	if err := f.add("uid-of-an-earlier-pod"); err != nil {
		t.Fatalf("static pod: %v", err)
	}
}

func TestDelUsesTheRecordEvenWhenNADsAreGone(t *testing.T) {
	f := newFixture(t, map[string]string{netselect.NetworksAnnotation: "a,b"})
	if err := f.add("uid-1"); err != nil {
		t.Fatal(err)
	}
	f.api.nads, f.api.pod = nil, nil
	f.exec.calls = nil
	if err := f.del(); err != nil {
		t.Fatal(err)
	}
	want := []string{"DEL net2 b", "DEL net2 b", "DEL net1 a", "DEL eth0 cluster"}
	if got := f.exec.seen(); !slices.Equal(got, want) {
		t.Fatalf("DEL calls = %v, want %v", got, want)
	}
	f.exec.calls = nil
	if err := f.del(); err != nil {
		t.Fatalf("second DEL: %v", err)
	}
	if got := f.exec.seen(); !slices.Equal(got, []string{"DEL eth0 cluster"}) {
		t.Fatalf("idempotent DEL without record = %v, want the cluster network only", got)
	}
}

func TestDelFailureKeepsRecordAndReportsAll(t *testing.T) {
	f := newFixture(t, map[string]string{netselect.NetworksAnnotation: "a,b"})
	if err := f.add("uid-1"); err != nil {
		t.Fatal(err)
	}
	f.exec.fail = map[string]string{"DEL net1 a": "ipam store down"}
	err := f.del()
	if err == nil || !strings.Contains(err.Error(), "ipam store down") {
		t.Fatalf("err = %v", err)
	}
	if !slices.Contains(f.exec.seen(), "DEL eth0 cluster") {
		t.Fatal("DEL stopped at the first failure")
	}
	if _, err := os.Stat(f.recordPath()); err != nil {
		t.Fatalf("record removed although DEL failed: %v", err)
	}
	f.exec.fail = nil
	if err := f.del(); err != nil {
		t.Fatalf("retried DEL: %v", err)
	}
}

// A record that does not decode, or whose attachment DEL could not run
// (it would fail every DEL for ever), fails one DEL naming the file and is
// moved aside; the next DEL succeeds.
func TestDelCorruptRecordIsAnErrorNamingTheFile(t *testing.T) {
	for name, record := range map[string]string{
		"truncated": `{"version":1,"contai`,
		"unrunnable conflist": `{"version":1,"containerID":"c0ffee","attachments":[` +
			`{"name":"a","ifname":"net1","conflist":{"cniVersion":"1.0.0","plugins":[{"type":"macvlan"}]}}]}`,
	} {
		t.Run(name, func(t *testing.T) { delCorrupt(t, record) })
	}
}

func delCorrupt(t *testing.T, record string) {
	f := newFixture(t, map[string]string{netselect.NetworksAnnotation: "a"})
	if err := f.add("uid-1"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.recordPath(), []byte(record), 0o600); err != nil {
		t.Fatal(err)
	}
	f.exec.calls = nil
	err := f.del()
	if err == nil || !strings.Contains(err.Error(), f.recordPath()) || cnierr.Code(err) != cnierr.DecodingFailure {
		t.Fatalf("err = %v (code %d), want code 6 naming %s", err, cnierr.Code(err), f.recordPath())
	}
	// What the pod and its NADs still say was torn down anyway.
	if got := f.exec.seen(); !slices.Equal(got, []string{"DEL net1 a", "DEL eth0 cluster"}) {
		t.Fatalf("DEL calls = %v", got)
	}
	if _, err := os.Stat(f.recordPath() + ".corrupt"); err != nil {
		t.Fatalf("corrupt record not kept aside: %v", err)
	}
	if err := f.del(); err != nil {
		t.Fatalf("next DEL: %v", err)
	}
}

func TestParseCNIArgs(t *testing.T) {
	a, err := parseCNIArgs("IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;K8S_POD_UID=u;K8S_POD_INFRA_CONTAINER_ID=s;IP=192.0.2.9")
	if err != nil {
		t.Fatal(err)
	}
	got := a.delegateArgs()
	want := [][2]string{{"IgnoreUnknown", "true"}, {"K8S_POD_NAMESPACE", "ns"}, {"K8S_POD_NAME", "p"},
		{"K8S_POD_INFRA_CONTAINER_ID", "s"}, {"K8S_POD_UID", "u"}, {"IP", "192.0.2.9"}}
	if !slices.Equal(got, want) {
		t.Fatalf("delegate args = %v, want %v", got, want)
	}
	if _, err := parseCNIArgs("K8S_POD_NAME"); err == nil || !strings.Contains(err.Error(), `"K8S_POD_NAME"`) {
		t.Fatalf("err = %v, want it to name the item", err)
	}
}
