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
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/plexus-cni/plexus/internal/testbed"
)

// plexusd is a plexusd process serving plexus-ipam's requests (/ipam) on
// a unix socket, in temporary directories: it writes its configuration
// there and touches nothing of the host's networking. The suite kills it
// with SIGKILL and starts it again.
type plexusd struct {
	t       *testing.T
	bin     string
	config  string
	socket  string
	metrics string
	log     string

	mu   sync.Mutex // guards cmd and done
	cmd  *exec.Cmd
	done chan struct{}
}

func startPlexusd(t *testing.T, env *testbed.Env, logDir string) *plexusd {
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
		metrics: freeAddr(t), log: filepath.Join(logDir, "plexusd.log"), config: filepath.Join(dir, "plexusd.json")}
	conf, _ := json.Marshal(map[string]any{
		"confDir": filepath.Join(dir, "net.d"), "binDir": filepath.Join(dir, "bin"), "sourceBinDir": "",
		"cniDir": filepath.Join(dir, "state"), "socketPath": d.socket, "nodeName": "chaos-node",
		"kubeconfig": env.Kubeconfig, "pluginKubeconfig": "", "metricsAddress": d.metrics, "logLevel": "info",
		"serveIPAM": true, "ipamNamespace": "",
	})
	if err := os.WriteFile(d.config, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.start(); err != nil {
		t.Fatalf("plexusd: %v", err)
	}
	t.Cleanup(d.kill)
	return d
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// start runs plexusd and waits (bounded) until /readyz answers 200.
func (d *plexusd) start() error {
	logf, err := os.OpenFile(d.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(d.bin, "--config="+d.config)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	d.mu.Lock()
	d.cmd, d.done = cmd, done
	d.mu.Unlock()
	hc := &http.Client{Timeout: 2 * time.Second}
	err = wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 90*time.Second, true, func(context.Context) (bool, error) {
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

// kill sends SIGKILL and waits until the process is gone.
func (d *plexusd) kill() {
	d.mu.Lock()
	cmd, done := d.cmd, d.done
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// daemonFaults kills plexusd every 8 to 20 s and starts it again after
// 0.5 to 2 s; meanwhile plexus-ipam runs requests in its own process.
func (r *run) daemonFaults(ctx context.Context) {
	rnd := rand.New(rand.NewPCG(3, uint64(time.Now().UnixNano())))
	for sleep(ctx, between(rnd, 8*time.Second, 20*time.Second)) {
		r.daemon.kill()
		r.c.daemonKills.Add(1)
		time.Sleep(between(rnd, 500*time.Millisecond, 2*time.Second)) // the outage itself
		if err := r.daemon.start(); err != nil {
			r.t.Errorf("%s: restarting plexusd: %v", r.name, err)
			return
		}
	}
}
