package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/plexus-cni/plexus/internal/testbed"
)

// plexusd is a plexusd process serving requests on a unix socket, in
// temporary directories: it writes its configuration there. The IPAM
// suite's serves plexus-ipam's requests (/ipam) in the machine's network
// namespace, where it touches no networking; the meta-plugin suite's runs
// in its simulated node's namespace (netns), where it runs the delegates.
// The suite kills it (its process group: plexusd and the delegates it
// runs, as a node kills a container) with SIGKILL and starts it again.
type plexusd struct {
	t       *testing.T
	bin     string
	config  string
	socket  string
	metrics string
	log     string
	netns   string // path of the namespace it runs in; "" for the machine's

	mu   sync.Mutex // guards cmd and done
	cmd  *exec.Cmd
	done chan struct{}
}

// startPlexusd starts a plexusd logging to logFile, in the namespace at
// netns ("" for the machine's), with its configuration's keys overridden
// by extra; it is killed in t.Cleanup.
func startPlexusd(t *testing.T, env *testbed.Env, logFile, netns string, extra map[string]any) *plexusd {
	dir := t.TempDir()
	for _, d := range []string{"net.d", "bin", "state"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	primary := `{"cniVersion":"1.0.0","name":"cluster","plugins":[{"type":"bridge","bridge":"cni0"}]}`
	if err := os.WriteFile(filepath.Join(dir, "net.d", "10-cluster.conflist"), []byte(primary), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &plexusd{t: t, bin: filepath.Join(testbed.Root(), "bin", "plexusd"), socket: filepath.Join(dir, "plexusd.sock"),
		metrics: testbed.FreeAddr(t), log: logFile, config: filepath.Join(dir, "plexusd.json"), netns: netns}
	conf := map[string]any{
		"confDir": filepath.Join(dir, "net.d"), "binDir": filepath.Join(dir, "bin"), "sourceBinDir": "",
		"cniDir": filepath.Join(dir, "state"), "socketPath": d.socket, "nodeName": "chaos-node",
		"kubeconfig": env.Kubeconfig, "pluginKubeconfig": "", "metricsAddress": d.metrics, "logLevel": "info",
		"serveIPAM": true, "ipamNamespace": "",
	}
	for k, v := range extra {
		conf[k] = v
	}
	raw, _ := json.Marshal(conf)
	if err := os.WriteFile(d.config, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.start(); err != nil {
		t.Fatalf("plexusd: %v", err)
	}
	t.Cleanup(d.kill)
	return d
}

// start runs plexusd and waits (bounded) until /readyz answers 200. A
// plexusd started while the suite holds the API server down waits its
// cacheSyncTimeoutSeconds (60) before it serves: the bound leaves room for
// that on a loaded machine.
func (d *plexusd) start() error {
	logf, err := os.OpenFile(d.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(d.bin, "--config="+d.config)
	if d.netns != "" {
		cmd = exec.Command("nsenter", "--net="+d.netns, "--", d.bin, "--config="+d.config)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	d.mu.Lock()
	d.cmd, d.done = cmd, done
	d.mu.Unlock()
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, DialContext: d.dial}}
	err = wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 4*time.Minute, true, func(context.Context) (bool, error) {
		select {
		case <-done:
			return false, fmt.Errorf("plexusd exited at start; see %s", d.log)
		default:
		}
		resp, err := hc.Get("http://" + d.metrics + "/readyz")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return fmt.Errorf("plexusd not ready: %w", err)
	}
	return nil
}

// dial connects to addr from the daemon's namespace.
func (d *plexusd) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	dialer := &net.Dialer{Timeout: 2 * time.Second}
	if d.netns == "" {
		return dialer.DialContext(ctx, network, addr)
	}
	var c net.Conn
	err := ns.WithNetNSPath(d.netns, func(ns.NetNS) error {
		var err error
		c, err = dialer.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// kill sends SIGKILL to the daemon's process group (plexusd and the
// delegates it runs) and waits until plexusd is gone.
func (d *plexusd) kill() {
	d.mu.Lock()
	cmd, done := d.cmd, d.done
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// faults kills plexusd every 8 to 20 s and starts it again after 0.5 to
// 2 s, counting the kills, until ctx ends. Meanwhile its clients run
// requests in their own process (plexus-ipam, the shim's DEL) or fail them
// (the shim's ADD: the runtime retries). It returns the restart's error.
func (d *plexusd) faults(ctx context.Context, seed uint64, kills *atomic.Int64) error {
	rnd := rand.New(rand.NewPCG(seed, uint64(time.Now().UnixNano())))
	for sleep(ctx, between(rnd, 8*time.Second, 20*time.Second)) {
		d.kill()
		kills.Add(1)
		time.Sleep(between(rnd, 500*time.Millisecond, 2*time.Second)) // the outage itself
		if err := d.start(); err != nil {
			return fmt.Errorf("restarting plexusd: %w", err)
		}
	}
	return nil
}
