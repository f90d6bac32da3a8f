package ipamshim

import (
	"bytes"
	"context"
	"errors"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/plexus-cni/plexus/internal/cnierr"
	"github.com/plexus-cni/plexus/internal/daemon/server"
	"github.com/plexus-cni/plexus/internal/daemon/wire"
	ipamplugin "github.com/plexus-cni/plexus/pkg/ipam/plugin"
)

// daemonIPAM is the /ipam handler of a test daemon: it records what it got.
type daemonIPAM struct {
	mu   sync.Mutex
	got  []string
	env  []map[string]string
	fail error
}

func (d *daemonIPAM) Do(_ context.Context, req server.Request) (types.Result, string, error) {
	command, a := req.Command, req.Args
	d.mu.Lock()
	defer d.mu.Unlock()
	d.got = append(d.got, command+" "+a.ContainerID+" "+string(a.StdinData))
	d.env = append(d.env, req.Env)
	if d.fail != nil {
		return nil, "", d.fail
	}
	if command != "ADD" {
		return nil, "", nil
	}
	_, ipn, _ := net.ParseCIDR("198.51.100.7/24")
	ipn.IP = net.ParseIP("198.51.100.7")
	return &current.Result{CNIVersion: current.ImplementedSpecVersion, IPs: []*current.IPConfig{{Address: *ipn}}}, "0.4.0", nil
}

func (d *daemonIPAM) requests() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.got...)
}

// startDaemon serves /ipam (and /cni, refusing) on a socket in a temp dir.
func startDaemon(t *testing.T, h *daemonIPAM) string {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "run", "plexusd.sock")
	l, err := server.Listen(socket)
	if err != nil {
		t.Fatal(err)
	}
	s := server.New(nil, server.Options{Concurrency: 1, IPAM: &server.Endpoint{Handler: h, Concurrency: 2}})
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		_ = s.Shutdown(context.Background())
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return socket
}

// local records the commands run in process.
type local struct{ ran []string }

func (l *local) funcs() skel.CNIFuncs {
	rec := func(cmd string) func(*skel.CmdArgs) error {
		return func(a *skel.CmdArgs) error {
			l.ran = append(l.ran, cmd+" "+a.ContainerID)
			return nil
		}
	}
	return skel.CNIFuncs{Add: rec("ADD"), Del: rec("DEL"), Check: rec("CHECK"), GC: rec("GC"), Status: rec("STATUS")}
}

func forwarder(l *local, env map[string]string, out *bytes.Buffer) *Forwarder {
	f := New(l.funcs())
	f.Getenv = func(k string) string { return env[k] }
	f.Stdout = out
	return f
}

func cmdArgs(cid string) *skel.CmdArgs {
	return &skel.CmdArgs{ContainerID: cid, IfName: "net1", Netns: "/run/netns/x", Args: "K8S_POD_NAME=p",
		StdinData: []byte(`{"cniVersion":"0.4.0","name":"n","ipam":{"type":"plexus-ipam"}}`)}
}

func TestForwardedWhenTheDaemonAnswers(t *testing.T) {
	h := &daemonIPAM{}
	socket := startDaemon(t, h)
	l, out := &local{}, &bytes.Buffer{}
	f := forwarder(l, map[string]string{wire.SocketEnv: socket, "NODE_NAME": "node-7"}, out)
	if err := f.Funcs().Add(cmdArgs("c1")); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	if err := f.Funcs().Del(cmdArgs("c1")); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if len(l.ran) != 0 {
		t.Errorf("ran in process although the daemon answered: %v", l.ran)
	}
	got := h.requests()
	if len(got) != 2 || got[0] != "ADD c1 "+string(cmdArgs("c1").StdinData) || got[1][:6] != "DEL c1" {
		t.Errorf("daemon got %q", got)
	}
	if h.env[0]["NODE_NAME"] != "node-7" {
		t.Errorf("forwarded env %v, want NODE_NAME", h.env[0])
	}
	if !bytes.Contains(out.Bytes(), []byte(`"cniVersion":"0.4.0"`)) || !bytes.Contains(out.Bytes(), []byte("198.51.100.7/24")) {
		t.Errorf("printed %s, want the 0.4.0 result", out)
	}
}

// The daemon's CNI error is returned with its code, not run again here.
func TestDaemonErrorKeepsItsCode(t *testing.T) {
	h := &daemonIPAM{fail: cnierr.Wrap(cnierr.InvalidNetConfig, errors.New("ipam.range: bad"))}
	socket := startDaemon(t, h)
	l := &local{}
	err := forwarder(l, map[string]string{wire.SocketEnv: socket}, &bytes.Buffer{}).Funcs().Add(cmdArgs("c2"))
	var e *types.Error
	if !errors.As(err, &e) || e.Code != cnierr.InvalidNetConfig || e.Msg != "ipam.range: bad" {
		t.Fatalf("ADD: %v, want code 7 with the daemon's message", err)
	}
	if len(l.ran) != 0 {
		t.Errorf("a failed request ran again in process: %v", l.ran)
	}
}

func TestInProcessWhenTheDaemonIsAway(t *testing.T) {
	dir := t.TempDir()
	refusing := filepath.Join(dir, "refusing.sock")
	ln, err := net.Listen("unix", refusing)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // the file stays, nobody listens: connection refused
	for name, env := range map[string]map[string]string{
		"no variable":        {},
		"no socket":          {wire.SocketEnv: filepath.Join(dir, "absent.sock")},
		"connection refused": {wire.SocketEnv: refusing},
	} {
		l, out := &local{}, &bytes.Buffer{}
		f := forwarder(l, env, out)
		if err := f.Funcs().Add(cmdArgs("c3")); err != nil {
			t.Errorf("%s: ADD: %v", name, err)
		}
		if err := f.Funcs().Status(cmdArgs("")); err != nil {
			t.Errorf("%s: STATUS: %v", name, err)
		}
		if len(l.ran) != 2 || l.ran[0] != "ADD c3" || l.ran[1] != "STATUS " {
			t.Errorf("%s: in process ran %q, want ADD and STATUS", name, l.ran)
		}
	}
}

// A request JSON would change on the way (a NODE_NAME that is not UTF-8)
// runs in this process, with the values as they are.
func TestInProcessWhenNotUTF8(t *testing.T) {
	h := &daemonIPAM{}
	socket := startDaemon(t, h)
	l := &local{}
	f := forwarder(l, map[string]string{wire.SocketEnv: socket, "NODE_NAME": "node-\xff"}, &bytes.Buffer{})
	if err := f.Funcs().Add(cmdArgs("c5")); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	if len(h.requests()) != 0 || len(l.ran) != 1 || l.ran[0] != "ADD c5" {
		t.Errorf("daemon got %q, in process ran %q; want only ADD c5 in process", h.requests(), l.ran)
	}
}

// A daemon that takes the request and dies before answering may have done
// part of it: code 11 (the runtime retries), and nothing runs here.
func TestDaemonGoneMidRequest(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "dying.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		buf := make([]byte, 1)
		_, _ = c.Read(buf) // the request has arrived
		c.Close()
	}()
	l := &local{}
	err = forwarder(l, map[string]string{wire.SocketEnv: socket}, &bytes.Buffer{}).Funcs().Add(cmdArgs("c4"))
	var e *types.Error
	if !errors.As(err, &e) || e.Code != cnierr.TryAgainLater {
		t.Fatalf("ADD: %v, want code 11", err)
	}
	if len(l.ran) != 0 {
		t.Errorf("ran in process after the daemon took the request: %v", l.ran)
	}
}

// The variables forwarded to the daemon are the ones plexus-ipam reads.
func TestEnvKeysAreThePlugins(t *testing.T) {
	if !slices.Equal(EnvKeys, ipamplugin.EnvKeys()) {
		t.Errorf("EnvKeys %v, plexus-ipam reads %v", EnvKeys, ipamplugin.EnvKeys())
	}
}
