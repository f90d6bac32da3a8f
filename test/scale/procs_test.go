package scale

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/plexus-cni/plexus/internal/testbed"
)

// proc is a plexus process the harness started: plexusd or
// plexus-controller, in its own process group, logging to a file, its
// /metrics on a free 127.0.0.1 port.
type proc struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{}
	metrics string // host:port
	started time.Time
	ready   time.Duration // start to ready (plexusd: /readyz 200)
}

// startProc runs bin with args, logging to logFile; it is stopped in
// t.Cleanup (and by stop).
func startProc(t *testing.T, name, bin, logFile, metrics string, args ...string) *proc {
	logf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), metrics: metrics, started: time.Now()}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	notePID(cmd.Process.Pid)
	t.Cleanup(p.stop)
	return p
}

// stop ends the process group: SIGTERM, then SIGKILL after 10 s.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// rssMB is the process's resident set (VmRSS), in MiB; 0 when gone.
func (p *proc) rssMB() float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// waitHTTP polls path on the process's metrics address until it answers
// 200 or the bound passes.
func (p *proc) waitHTTP(ctx context.Context, path string, bound time.Duration) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	return wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, bound, true, func(context.Context) (bool, error) {
		select {
		case <-p.done:
			return false, fmt.Errorf("%s exited", p.name)
		default:
		}
		resp, err := hc.Get("http://" + p.metrics + path)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

// plexusd is one real node's daemon: its socket serves plexus-ipam's
// requests (/ipam) with its long-lived store client.
type plexusd struct {
	*proc
	node, socket string
}

// startPlexusd starts plexusd for node in temporary directories (its CNI
// configuration, binaries and state there: nothing of the host's), with
// plexus-ipam's objects in ipamNS, and waits until it is ready.
func startPlexusd(ctx context.Context, t *testing.T, env *testbed.Env, logDir, node, ipamNS string) (*plexusd, error) {
	dir := t.TempDir()
	for _, d := range []string{"net.d", "bin", "state"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	primary := `{"cniVersion":"1.0.0","name":"cluster","plugins":[{"type":"bridge","bridge":"cni0"}]}`
	if err := os.WriteFile(filepath.Join(dir, "net.d", "10-cluster.conflist"), []byte(primary), 0o600); err != nil {
		return nil, err
	}
	socket, metrics := filepath.Join(dir, "plexusd.sock"), testbed.FreeAddr(t)
	conf, _ := json.Marshal(map[string]any{
		"confDir": filepath.Join(dir, "net.d"), "binDir": filepath.Join(dir, "bin"), "sourceBinDir": "",
		"cniDir": filepath.Join(dir, "state"), "socketPath": socket, "nodeName": node,
		"kubeconfig": env.Kubeconfig, "pluginKubeconfig": "", "metricsAddress": metrics, "logLevel": "info",
		"serveIPAM": true, "ipamNamespace": ipamNS,
	})
	config := filepath.Join(dir, "plexusd.json")
	if err := os.WriteFile(config, conf, 0o600); err != nil {
		return nil, err
	}
	p := startProc(t, "plexusd "+node, repoBin("plexusd"), filepath.Join(logDir, "plexusd-"+node+".log"), metrics, "--config="+config)
	if err := p.waitHTTP(ctx, "/readyz", 3*time.Minute); err != nil {
		return nil, fmt.Errorf("plexusd %s not ready: %w (log %s)", node, err, filepath.Join(logDir, "plexusd-"+node+".log"))
	}
	p.ready = time.Since(p.started)
	return &plexusd{proc: p, node: node, socket: socket}, nil
}

// notePID appends pid to $SCALE_PID_FILE, from which hack/scale.sh stops
// the process groups left behind by a test binary that died before its
// cleanups ran (a -test.timeout panic).
func notePID(pid int) {
	if f := os.Getenv("SCALE_PID_FILE"); f != "" {
		if w, err := os.OpenFile(f, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
			fmt.Fprintln(w, pid)
			w.Close()
		}
	}
}

func repoBin(name string) string { return filepath.Join(testbed.Root(), "bin", name) }

// controllerFlags are the flags plexus-controller's --help lists, with
// their defaults ("" when it gives none), so that newer flags
// (--kube-api-qps) are passed only to a binary that has them.
func controllerFlags(t *testing.T) map[string]string {
	out, _ := exec.Command(repoBin("plexus-controller"), "--help").CombinedOutput()
	flags := helpFlags(string(out))
	if _, ok := flags["ipam-namespaces"]; !ok {
		t.Fatalf("plexus-controller --help lists no -ipam-namespaces:\n%s", out)
	}
	return flags
}

// helpFlags reads the flags and their defaults off a pflag --help.
func helpFlags(help string) map[string]string {
	flags := map[string]string{}
	for _, line := range strings.Split(help, "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "-") {
			def := ""
			if i := strings.LastIndex(line, "(default "); i >= 0 && strings.HasSuffix(line, ")") {
				def = line[i+len("(default ") : len(line)-1]
			}
			flags[strings.TrimLeft(f[0], "-")] = def
		}
	}
	return flags
}

// controllerFlag is the value the run gives flag: its own, else the
// binary's default ("" when it has no such flag or default).
func (c config) controllerFlag(flag string) string {
	if _, ok := c.controllerFlags[flag]; !ok {
		return ""
	}
	if v, ok := c.controllerExtra[flag]; ok {
		return v
	}
	return c.controllerFlags[flag]
}

// startController starts plexus-controller on ipamNS with the given grace,
// under a lease of its own (a new name each start: no wait for the
// previous holder's lease to expire), webhook off.
func startController(t *testing.T, cfg config, env *testbed.Env, ipamNS, lease string) *proc {
	metrics := testbed.FreeAddr(t)
	args := []string{"--kubeconfig=" + env.Kubeconfig, "--leader-election-namespace=default",
		"--leader-election-name=" + lease, "--leader-election-identity=scale", "--metrics-address=" + metrics,
		"--ipam-namespaces=" + ipamNS, "--ipam-grace=" + cfg.grace.String(), "--webhook-address=", "--log-level=info"}
	for flag, v := range cfg.controllerExtra {
		if _, ok := cfg.controllerFlags[flag]; ok {
			args = append(args, "--"+flag+"="+v)
		}
	}
	return startProc(t, "plexus-controller", repoBin("plexus-controller"), filepath.Join(cfg.logDir, "controller.log"), metrics, args...)
}

// controllerState is what the controller's metrics say about the IPAM
// reclaimer: passes done, their total seconds, allocations freed.
type controllerState struct {
	passes, passSeconds, freed float64
}

func readController(ctx context.Context, p *proc) (controllerState, error) {
	s, err := httpScrape(ctx, p.metrics)
	if err != nil {
		return controllerState{}, err
	}
	ipam := func(l map[string]string) bool { return l["controller"] == "ipam" }
	return controllerState{
		passes:      s.sum("plexus_controller_reconcile_total", ipam),
		passSeconds: s.sum("plexus_controller_reconcile_duration_seconds", ipam),
		freed:       s.sum("plexus_controller_ipam_reclaimed_total", func(l map[string]string) bool { return l["action"] == "free" }),
	}, nil
}

// waitController polls the controller's metrics (every 100 ms) until ok
// holds or the bound passes; it returns the last state read.
func waitController(ctx context.Context, p *proc, bound time.Duration, ok func(controllerState) bool) (controllerState, error) {
	var last controllerState
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, bound, true, func(ctx context.Context) (bool, error) {
		select {
		case <-p.done:
			return false, fmt.Errorf("plexus-controller exited")
		default:
		}
		s, err := readController(ctx, p)
		if err != nil {
			return false, nil
		}
		last = s
		return ok(s), nil
	})
	return last, err
}
