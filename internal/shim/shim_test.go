package shim_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/plexus-cni/plexus/internal/cnierr"
	"github.com/plexus-cni/plexus/internal/daemon/server"
	"github.com/plexus-cni/plexus/internal/plugin"
	"github.com/plexus-cni/plexus/internal/shim"
)

// fakeExec plays the cluster network's delegate for in-process requests.
type fakeExec struct {
	mu       sync.Mutex
	commands []string
	fail     error
}

func (f *fakeExec) ExecPlugin(_ context.Context, _ string, _ []byte, environ []string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range environ {
		if c, ok := strings.CutPrefix(e, "CNI_COMMAND="); ok {
			f.commands = append(f.commands, c)
		}
	}
	if f.fail != nil {
		return nil, f.fail
	}
	return []byte(`{"cniVersion":"1.0.0"}`), nil
}

func (f *fakeExec) FindInPath(p string, _ []string) (string, error) { return "/fake/" + p, nil }

func (f *fakeExec) Decode(b []byte) (version.PluginInfo, error) {
	return version.PluginSupports("1.0.0", "1.1.0"), nil
}

// setup returns a configuration naming socket and a shim whose in-process
// plugin runs fake delegates without Kubernetes.
func setup(t *testing.T, socket string) (*shim.Shim, *fakeExec, []byte, *strings.Builder) {
	t.Helper()
	dir := t.TempDir()
	cluster := filepath.Join(dir, "cluster.conflist")
	if err := os.WriteFile(cluster, []byte(`{"cniVersion":"1.0.0","name":"cluster","plugins":[{"type":"bridge"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := []byte(`{"cniVersion":"1.0.0","name":"plexus-network","type":"plexus","clusterNetwork":"` + cluster +
		`","cniDir":"` + filepath.Join(dir, "state") + `","daemonSocket":"` + socket + `","logToStderr":false}`)
	fe := &fakeExec{}
	s := shim.New((&plugin.Plugin{Exec: fe}).Funcs())
	out := &strings.Builder{}
	s.Stdout, s.Stderr = out, &strings.Builder{}
	return s, fe, conf, out
}

func args(conf []byte) *skel.CmdArgs {
	return &skel.CmdArgs{ContainerID: "c0ffee", Netns: "/var/run/netns/x", IfName: "eth0",
		Args: "K8S_POD_NAMESPACE=default;K8S_POD_NAME=p", StdinData: conf}
}

func code(t *testing.T, err error) (uint, string) {
	t.Helper()
	var e *types.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a CNI error", err, err)
	}
	return e.Code, e.Msg
}

func TestDaemonDown(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "plexusd.sock") // nobody listens
	s, fe, conf, _ := setup(t, socket)
	f := s.Funcs()
	for name, run := range map[string]func(*skel.CmdArgs) error{"ADD": f.Add, "STATUS": f.Status, "GC": f.GC} {
		c, msg := code(t, run(args(conf)))
		if c != cnierr.PluginNotAvailable || !strings.Contains(msg, "plexusd is not reachable at "+socket) {
			t.Errorf("%s with the daemon down: code %d %q, want 50 naming the socket", name, c, msg)
		}
	}
	if len(fe.commands) != 0 {
		t.Errorf("delegates ran for ADD/STATUS/GC without the daemon: %v", fe.commands)
	}
	// DEL tears down in this process.
	if err := f.Del(args(conf)); err != nil {
		t.Fatalf("DEL with the daemon down: %v", err)
	}
	if len(fe.commands) != 1 || fe.commands[0] != "DEL" {
		t.Errorf("delegate commands = %v, want one DEL", fe.commands)
	}
	// ... and reports a real failure instead of swallowing it.
	fe.fail = &types.Error{Code: 5, Msg: "ipam store unreachable"}
	if c, msg := code(t, f.Del(args(conf))); c != 5 || !strings.Contains(msg, "ipam store unreachable") {
		t.Errorf("failing DEL with the daemon down: code %d %q", c, msg)
	}
}

// PLEXUS_LOCAL=1 (plexus-shim re-executing plexus) runs every command in
// this process, daemonSocket or not: it never goes back to the daemon.
func TestLocalEnvRunsHere(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "none.sock")
	s, fe, conf, _ := setup(t, socket)
	s.Getenv = func(k string) string {
		if k == shim.LocalEnv {
			return "1"
		}
		return ""
	}
	f := s.Funcs()
	if err := f.Add(args(conf)); err != nil {
		t.Fatalf("ADD with PLEXUS_LOCAL=1: %v", err)
	}
	if len(fe.commands) != 1 || fe.commands[0] != "ADD" {
		t.Errorf("delegate commands = %v, want the ADD run here", fe.commands)
	}
}

// fakeHandler answers like the plugin would.
type fakeHandler struct{ err error }

func (h fakeHandler) Do(_ context.Context, req server.Request) (types.Result, string, error) {
	command, a := req.Command, req.Args
	if h.err != nil {
		return nil, "", h.err
	}
	if command != "ADD" {
		return nil, "", nil
	}
	return &current.Result{CNIVersion: "1.0.0", Interfaces: []*current.Interface{{Name: a.IfName}}}, "0.4.0", nil
}

func serve(t *testing.T, h server.Handler) string {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "run", "plexusd.sock")
	l, err := server.Listen(socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(h, server.Options{Concurrency: 2, QueueLength: 2})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return socket
}

func TestForwardsToTheDaemon(t *testing.T) {
	socket := serve(t, fakeHandler{})
	if fi, err := os.Stat(socket); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v (%v), want 0600", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Dir(socket)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("socket directory mode %v (%v), want 0700", fi.Mode(), err)
	}
	s, fe, conf, out := setup(t, socket)
	if err := s.Funcs().Add(args(conf)); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.Contains(got, `"cniVersion":"0.4.0"`) || !strings.Contains(got, `"name":"eth0"`) {
		t.Errorf("printed result %s, want the daemon's, in cniVersion 0.4.0", got)
	}
	if err := s.Funcs().Del(args(conf)); err != nil {
		t.Fatal(err)
	}
	if len(fe.commands) != 0 {
		t.Errorf("ran in process although the daemon answered: %v", fe.commands)
	}
}

func TestDaemonErrorsKeepTheirCode(t *testing.T) {
	socket := serve(t, fakeHandler{err: cnierr.New(cnierr.InvalidNetConfig, "net1: NAD default/x: not found")})
	s, fe, conf, _ := setup(t, socket)
	for name, run := range map[string]func(*skel.CmdArgs) error{"ADD": s.Funcs().Add, "DEL": s.Funcs().Del} {
		c, msg := code(t, run(args(conf)))
		if c != cnierr.InvalidNetConfig || msg != "net1: NAD default/x: not found" {
			t.Errorf("%s: code %d %q", name, c, msg)
		}
	}
	if len(fe.commands) != 0 {
		t.Errorf("a DEL the daemon failed was run again in process: %v", fe.commands)
	}
}

// A server that accepts and closes without answering: the request may
// have been partly done. ADD fails with 50, DEL finishes in process.
func TestDaemonDiesMidRequest(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "plexusd.sock")
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 512)
			_, _ = c.Read(buf)
			c.Close()
		}
	}()
	s, fe, conf, _ := setup(t, socket)
	if c, msg := code(t, s.Funcs().Add(args(conf))); c != cnierr.PluginNotAvailable || !strings.Contains(msg, "failed during ADD") {
		t.Errorf("ADD: code %d %q", c, msg)
	}
	if err := s.Funcs().Del(args(conf)); err != nil || len(fe.commands) != 1 {
		t.Errorf("DEL: %v, delegate commands %v", err, fe.commands)
	}
}

// A value JSON cannot carry unchanged never reaches the daemon: ADD fails
// with code 4 naming the variable, DEL runs in this process with the value
// as the runtime passed it.
func TestNotUTF8StaysOutOfTheDaemon(t *testing.T) {
	h := &countingHandler{}
	socket := serve(t, h)
	s, fe, conf, _ := setup(t, socket)
	a := args(conf)
	a.Netns = "/var/run/netns/cni-\xff"
	if c, msg := code(t, s.Funcs().Add(a)); c != cnierr.InvalidEnv || !strings.Contains(msg, "CNI_NETNS") {
		t.Errorf("ADD with a netns that is not UTF-8: code %d %q, want %d naming CNI_NETNS", c, msg, cnierr.InvalidEnv)
	}
	if err := s.Funcs().Del(a); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if h.calls.Load() != 0 || len(fe.commands) != 1 || fe.commands[0] != "DEL" {
		t.Errorf("daemon ran %d requests, delegates ran %v; want none and one DEL in process", h.calls.Load(), fe.commands)
	}
}

type countingHandler struct{ calls atomic.Int32 }

func (h *countingHandler) Do(context.Context, server.Request) (types.Result, string, error) {
	h.calls.Add(1)
	return nil, "", nil
}
