// Package daemon tests plexusd end to end: the daemon binary runs inside a
// simulated node's network namespace against the real test bed API
// server, the runtime calls the installed plexus shim through libcni, and
// the tests restart, kill and reconfigure the daemon while pods come and
// go. It also applies deploy/ to the API server and checks the RBAC.
package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/internal/testbed/nodesim"
	"github.com/plexus-cni/plexus/internal/testbed/poll"
)

// metricsAddr is plexusd's HTTP address inside each node's namespace.
const metricsAddr = "127.0.0.1:9091"

type world struct {
	t   *testing.T
	env *testbed.Env
	sw  *nodesim.Switch
	ns  string
	hl  string // host-local dataDir of the secondary networks
}

func newWorld(t *testing.T) *world {
	t.Helper()
	testbed.RequireRoot(t)
	env := testbed.Require(t)
	for _, bin := range []string{repoBin("plexus"), repoBin("plexus-shim"), repoBin("plexusd"),
		filepath.Join(testbed.CNIBinDir(), "macvlan"), filepath.Join(testbed.CNIBinDir(), "host-local")} {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("%s is missing: run `make build testbed` first", bin)
		}
	}
	return &world{t: t, env: env, sw: nodesim.NewSwitch(t), ns: env.Namespace(t, "plexusd"), hl: t.TempDir()}
}

func repoBin(name string) string { return filepath.Join(testbed.Root(), "bin", name) }

func ctxFor(t *testing.T, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c
}

// macvlanNAD creates a NAD on the nodes' uplink with TEST-NET-1 addresses.
func (w *world) macvlanNAD(name string) {
	w.env.CreateNAD(w.t, w.ns, name, fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"plugins":[{"type":"macvlan",
		"master":"uplink0","mode":"bridge","ipam":{"type":"host-local","subnet":"192.0.2.0/24",
		"rangeStart":"192.0.2.100","rangeEnd":"192.0.2.250","dataDir":%q}}]}`, name, w.hl))
}

// node is a simulated node whose CNI bin dir and conf dir are plexusd's.
type node struct {
	*nodesim.Node
	bin    string // the node's /opt/cni/bin: plexusd installs plexus here
	socket string
}

// newNode makes a node with the primary (bridge + host-local in
// TEST-NET-3) in its conf dir; plexusd is not started.
func (w *world) newNode(name string) *node {
	w.t.Helper()
	bin := filepath.Join(w.t.TempDir(), "bin")
	n := nodesim.NewNode(w.t, w.sw, name, nodesim.NodeOptions{
		BinDirs: []string{bin, testbed.CNIBinDir()},
		Client:  w.env.Client,
		Forward: []string{w.env.APIAddr()},
	})
	primary := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"cluster","plugins":[{"type":"bridge","bridge":"cni0","isGateway":true,
		"ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":"203.0.113.0/24","gateway":"203.0.113.1"}]]}},
		{"type":"portmap","capabilities":{"portMappings":true}}]}`, filepath.Join(n.StateDir, "cluster-ipam"))
	if err := n.WriteConfFile("10-cluster.conflist", primary); err != nil {
		w.t.Fatal(err)
	}
	return &node{Node: n, bin: bin, socket: filepath.Join(n.StateDir, "run", "plexusd.sock")}
}

// daemon is one plexusd process in a node's namespace.
type daemon struct {
	t    *testing.T
	n    *node
	cmd  *exec.Cmd
	log  *lockedBuffer
	done chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// daemonConfig writes plexusd's JSON configuration for n; extra keys win.
func (w *world) daemonConfig(n *node, extra map[string]any) string {
	w.t.Helper()
	conf := map[string]any{
		"confDir": n.ConfDir, "binDir": n.bin, "sourceBinDir": filepath.Join(testbed.Root(), "bin"),
		"cniDir": filepath.Join(n.StateDir, "plexus"), "socketPath": n.socket, "nodeName": n.Name,
		"kubeconfig": w.env.Kubeconfig, "pluginKubeconfig": "", "metricsAddress": metricsAddr,
		"logLevel": "debug", "resyncSeconds": 5, "concurrency": 8, "queueLength": 64,
		"pluginConfig": map[string]any{"logToStderr": false, "logLevel": "debug",
			"logFile": filepath.Join(n.StateDir, "plexus.log")},
	}
	for k, v := range extra {
		conf[k] = v
	}
	path := filepath.Join(n.StateDir, "plexusd.json")
	raw, _ := json.Marshal(conf)
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		w.t.Fatal(err)
	}
	return path
}

// start runs plexusd in n's namespace and waits until /readyz says ok.
func (w *world) start(n *node, config string) *daemon {
	w.t.Helper()
	d := &daemon{t: w.t, n: n, log: &lockedBuffer{}, done: make(chan struct{})}
	d.cmd = exec.Command("nsenter", "--net="+n.NetNSPath, "--", repoBin("plexusd"), "--config="+config)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		w.t.Fatalf("start plexusd: %v", err)
	}
	go func() {
		_ = d.cmd.Wait()
		close(d.done)
	}()
	w.t.Cleanup(func() {
		d.stop(syscall.SIGKILL)
		if w.t.Failed() || os.Getenv("PLEXUS_E2E_LOGS") == "1" {
			w.t.Logf("plexusd log (pid %d):\n%s", d.cmd.Process.Pid, d.log.String())
		}
	})
	waitFor(w.t, 60*time.Second, "plexusd is ready", func() (bool, string) {
		select {
		case <-d.done:
			w.t.Fatalf("plexusd exited: %s", d.log.String())
		default:
		}
		code, body, err := n.get("/readyz")
		return err == nil && code == http.StatusOK, fmt.Sprintf("%d %s %v", code, body, err)
	})
	return d
}

// stop signals the daemon and waits (bounded) until it has exited.
func (d *daemon) stop(sig syscall.Signal) {
	select {
	case <-d.done:
		return
	default:
	}
	_ = d.cmd.Process.Signal(sig)
	select {
	case <-d.done:
	case <-time.After(60 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
		d.t.Errorf("plexusd did not exit within 60s of %v", sig)
	}
}

// exitCode is the daemon's exit status after stop.
func (d *daemon) exitCode() int { return d.cmd.ProcessState.ExitCode() }

// get makes an HTTP GET to plexusd's metrics address in n's namespace.
func (n *node) get(path string) (int, string, error) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := ns.WithNetNSPath(n.NetNSPath, func(ns.NetNS) error {
				var err error
				c, err = (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}}
	resp, err := client.Get("http://" + metricsAddr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	poll.Until(t, limit, what, cond)
}

func netsAnnotation(v string) map[string]string {
	return map[string]string{"k8s.v1.cni.cncf.io/networks": v}
}

func links(t *testing.T, p *nodesim.Pod) []string {
	t.Helper()
	l, err := p.Links()
	if err != nil {
		t.Errorf("links of %s: %v", p.Name, err)
	}
	slices.Sort(l)
	return l
}

// held lists the addresses host-local holds in dir for network.
func held(t *testing.T, dir, network string) []string {
	t.Helper()
	return testbed.HostLocalLeases(t, filepath.Join(dir, network))
}
