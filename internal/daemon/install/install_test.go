package install

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/plexus-cni/plexus/internal/testbed/poll"
)

const flannel = `{"cniVersion":"0.4.0","name":"cbr0","plugins":[{"type":"flannel","delegate":{"isDefaultGateway":true}},
	{"type":"portmap","capabilities":{"portMappings":true}}]}`

func newInstaller(t *testing.T) (*Installer, string) {
	t.Helper()
	dir := t.TempDir()
	return &Installer{Conf: ConfOptions{Dir: dir, Name: DefaultConfName,
		Plugin: map[string]any{"daemonSocket": "/run/plexus/plexusd.sock"}}}, dir
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// written decodes the plexus configuration, failing when it is absent.
func written(t *testing.T, in *Installer) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(in.Conf.Path())
	if err != nil {
		t.Fatalf("plexus configuration: %v", err)
	}
	var c struct {
		CNIVersion string           `json:"cniVersion"`
		Plugins    []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(raw, &c); err != nil || len(c.Plugins) != 1 {
		t.Fatalf("plexus configuration is broken (%v): %s", err, raw)
	}
	c.Plugins[0]["cniVersion"] = c.CNIVersion
	return c.Plugins[0]
}

func absent(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s exists (or stat failed: %v), want nothing written", path, err)
	}
}

func TestPrimaryAppearsLate(t *testing.T) {
	in, dir := newInstaller(t)
	st := in.Sync()
	if st.ConfCurrent || !strings.Contains(st.Waiting, "no primary CNI configuration") {
		t.Fatalf("state without a primary = %+v, want waiting for one", st)
	}
	absent(t, in.Conf.Path())
	primary := filepath.Join(dir, "10-flannel.conflist")
	write(t, primary, flannel)
	if st := in.Sync(); !st.Ready() {
		t.Fatalf("state with a primary = %+v", st)
	}
	p := written(t, in)
	if p["type"] != "plexus-shim" || p["clusterNetwork"] != primary || p["cniVersion"] != "0.4.0" ||
		p["daemonSocket"] != "/run/plexus/plexusd.sock" {
		t.Errorf("written plugin = %v", p)
	}
	if caps, _ := p["capabilities"].(map[string]any); caps["portMappings"] != true || len(caps) != 1 {
		t.Errorf("capabilities = %v, want the primary's portMappings", p["capabilities"])
	}
	if fi, err := os.Stat(in.Conf.Path()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode of %s = %v (%v), want 0600", in.Conf.Path(), fi.Mode(), err)
	}
}

func TestPrimaryChanges(t *testing.T) {
	in, dir := newInstaller(t)
	write(t, filepath.Join(dir, "10-flannel.conflist"), flannel)
	in.Sync()
	write(t, filepath.Join(dir, "10-flannel.conflist"),
		`{"cniVersion":"1.0.0","name":"cbr0","plugins":[{"type":"flannel","capabilities":{"bandwidth":true}}]}`)
	in.Sync()
	p := written(t, in)
	if caps, _ := p["capabilities"].(map[string]any); caps["bandwidth"] != true || caps["portMappings"] != nil || p["cniVersion"] != "1.0.0" {
		t.Errorf("after the primary changed: %v", p)
	}
	// A new primary sorting first takes over.
	calico := filepath.Join(dir, "05-calico.conf")
	write(t, calico, `{"cniVersion":"1.0.0","name":"k8s-pod-network","type":"calico"}`)
	in.Sync()
	if p := written(t, in); p["clusterNetwork"] != calico || p["capabilities"] != nil {
		t.Errorf("after a new primary appeared: %v", p)
	}
}

func TestUnreadablePrimaryKeepsTheGoodFile(t *testing.T) {
	in, dir := newInstaller(t)
	primary := filepath.Join(dir, "10-flannel.conflist")
	write(t, primary, `{"cniVersion":"1.0.0","plugins":[{"type":"flannel"`)
	if st := in.Sync(); st.ConfCurrent || !strings.Contains(st.Waiting, primary) {
		t.Fatalf("state with a truncated primary = %+v, want waiting naming it", st)
	}
	absent(t, in.Conf.Path())
	write(t, primary, flannel)
	in.Sync()
	good, _ := os.ReadFile(in.Conf.Path())
	for _, broken := range []string{"", "{", `{"cniVersion":"1.0.0"}`} {
		write(t, primary, broken)
		if st := in.Sync(); st.ConfCurrent || !strings.Contains(st.Waiting, "unreadable") {
			t.Errorf("primary %q: state %+v, want waiting (unreadable)", broken, st)
		}
		if now, _ := os.ReadFile(in.Conf.Path()); string(now) != string(good) {
			t.Errorf("primary %q: the plexus configuration changed to %s", broken, now)
		}
	}
	// A directory in the primary's place is no configuration either.
	if err := os.Remove(primary); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(primary, 0o755); err != nil {
		t.Fatal(err)
	}
	if st := in.Sync(); st.ConfCurrent {
		t.Errorf("a directory was taken as the primary: %+v", st)
	}
	if now, _ := os.ReadFile(in.Conf.Path()); string(now) != string(good) {
		t.Errorf("the plexus configuration changed to %s", now)
	}
}

func TestPrimaryDeletedKeepsTheFile(t *testing.T) {
	in, dir := newInstaller(t)
	primary := filepath.Join(dir, "10-flannel.conflist")
	write(t, primary, flannel)
	in.Sync()
	if err := os.Remove(primary); err != nil {
		t.Fatal(err)
	}
	st := in.Sync()
	if st.ConfCurrent || !strings.Contains(st.Waiting, "waiting for a usable primary") {
		t.Errorf("state after the primary was deleted = %+v", st)
	}
	if p := written(t, in); p["clusterNetwork"] != primary {
		t.Errorf("plexus configuration after the primary was deleted: %v", p)
	}
}

func TestNeverWrapsItself(t *testing.T) {
	in, dir := newInstaller(t)
	// Its own file from an earlier run, and a copy someone renamed.
	write(t, in.Conf.Path(), `{"cniVersion":"1.0.0","name":"plexus-network","plugins":[{"type":"plexus","clusterNetwork":"/x"}]}`)
	write(t, filepath.Join(dir, "01-plexus-old.conf"), `{"cniVersion":"1.0.0","name":"p","type":"plexus","clusterNetwork":"/x"}`)
	if st := in.Sync(); st.ConfCurrent {
		t.Fatalf("took a plexus configuration as the primary: %+v", st)
	}
	primary := filepath.Join(dir, "10-flannel.conflist")
	write(t, primary, flannel)
	in.Sync()
	if p := written(t, in); p["clusterNetwork"] != primary {
		t.Errorf("wrapped %v, want %s", p["clusterNetwork"], primary)
	}
}

func TestRestartKeepsTheFile(t *testing.T) {
	in, dir := newInstaller(t)
	primary := filepath.Join(dir, "10-flannel.conflist")
	write(t, primary, flannel)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, time.Hour) }()
	waitFor(t, "the configuration is written", func() bool { return in.State().ConfCurrent })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(in.Conf.Path())
	// The next plexusd starts while the primary is being replaced.
	if err := os.Remove(primary); err != nil {
		t.Fatal(err)
	}
	again := &Installer{Conf: in.Conf}
	again.Sync()
	if now, _ := os.ReadFile(in.Conf.Path()); string(now) != string(before) {
		t.Errorf("restart changed the configuration to %q", now)
	}
}

func TestReadinessIndicatorGatesWriting(t *testing.T) {
	in, dir := newInstaller(t)
	in.ReadinessFile = filepath.Join(t.TempDir(), "ready")
	write(t, filepath.Join(dir, "10-flannel.conflist"), flannel)
	if st := in.Sync(); st.ConfCurrent || !strings.Contains(st.Waiting, in.ReadinessFile) {
		t.Fatalf("state without the readiness file = %+v", st)
	}
	absent(t, in.Conf.Path())
	write(t, in.ReadinessFile, "")
	if st := in.Sync(); !st.ConfCurrent {
		t.Fatalf("state with the readiness file = %+v", st)
	}
}

// Run reacts to changes through the watch, not only the resync.
func TestRunFollowsChanges(t *testing.T) {
	in, dir := newInstaller(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, time.Hour) }()
	defer func() {
		cancel()
		<-done
	}()
	primary := filepath.Join(dir, "10-flannel.conflist")
	write(t, primary, flannel)
	waitFor(t, "the late primary is wrapped", func() bool { return in.State().ConfCurrent })
	// Someone (a CNI installer) moves plexus's file away: it comes back.
	if err := os.Rename(in.Conf.Path(), in.Conf.Path()+".cilium_bak"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the configuration is restored", func() bool {
		_, err := os.Stat(in.Conf.Path())
		return err == nil
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 20*time.Second, what, poll.True(cond))
}

func TestKubeconfigFollowsTheToken(t *testing.T) {
	in, _ := newInstaller(t)
	sa := t.TempDir()
	o := &KubeconfigOptions{Path: filepath.Join(t.TempDir(), "plexus.d", "plexus.kubeconfig"),
		Server: "https://192.0.2.10:6443", TokenFile: filepath.Join(sa, "token"), CAFile: filepath.Join(sa, "ca.crt")}
	in.Kubeconfig = o
	write(t, o.CAFile, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	if st := in.Sync(); !strings.Contains(st.KubeconfigError, o.TokenFile) {
		t.Errorf("without a token: %+v, want an error naming %s", st, o.TokenFile)
	}
	for _, token := range []string{"first-token-value", "second-token-value"} {
		write(t, o.TokenFile, token+"\n")
		if st := in.Sync(); st.KubeconfigError != "" {
			t.Fatalf("kubeconfig: %s", st.KubeconfigError)
		}
		cfg, err := clientcmd.LoadFromFile(o.Path)
		if err != nil {
			t.Fatal(err)
		}
		ctx := cfg.Contexts[cfg.CurrentContext]
		if got := cfg.AuthInfos[ctx.AuthInfo].Token; got != token || cfg.Clusters[ctx.Cluster].Server != o.Server {
			t.Errorf("kubeconfig has token %q server %q, want %q %q", got, cfg.Clusters[ctx.Cluster].Server, token, o.Server)
		}
		if fi, _ := os.Stat(o.Path); fi.Mode().Perm() != 0o600 {
			t.Errorf("kubeconfig mode %v, want 0600", fi.Mode())
		}
	}
	write(t, o.TokenFile, "")
	if st := in.Sync(); st.KubeconfigError == "" || strings.Contains(st.KubeconfigError, "second-token") {
		t.Errorf("empty token: error %q", st.KubeconfigError)
	}
}

// A binary that is being executed is replaced, never written in place:
// "text file busy" cannot happen.
func TestBinariesReplacedWhileRunning(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	copyFile(t, sleep, filepath.Join(src, "plexus"))
	if got, err := Binaries(src, dst, []string{"plexus", "plexus-ipam"}); err != nil || len(got) != 1 {
		t.Fatalf("first install: %v %v", got, err)
	}
	running := exec.Command(filepath.Join(dst, "plexus"), "60")
	if err := running.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		running.Process.Kill()
		running.Wait()
	}()
	waitFor(t, "the copy runs", func() bool {
		exe, _ := os.Readlink("/proc/" + itoa(running.Process.Pid) + "/exe")
		return strings.HasPrefix(exe, dst)
	})
	// The test exercises the hazard: writing in place fails now.
	if f, err := os.OpenFile(filepath.Join(dst, "plexus"), os.O_WRONLY, 0); !errors.Is(err, syscall.ETXTBSY) {
		if f != nil {
			f.Close()
		}
		t.Fatalf("opening the running binary for writing: %v, want text file busy", err)
	}
	write(t, filepath.Join(src, "plexus"), "#!/bin/sh\necho new\n")
	if got, err := Binaries(src, dst, []string{"plexus"}); err != nil || len(got) != 1 {
		t.Fatalf("install over the running binary: %v %v", got, err)
	}
	if now, _ := os.ReadFile(filepath.Join(dst, "plexus")); string(now) != "#!/bin/sh\necho new\n" {
		t.Errorf("installed content %q", now)
	}
	if running.ProcessState != nil {
		t.Errorf("the running copy was disturbed")
	}
	if got, _ := Binaries(src, dst, []string{"plexus"}); len(got) != 0 {
		t.Errorf("identical content reinstalled: %v", got)
	}
	if left, _ := filepath.Glob(filepath.Join(dst, ".*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o755); err != nil {
		t.Fatal(err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
