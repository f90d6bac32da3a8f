package testbed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

const (
	etcdReadyTimeout = 20 * time.Second
	etcdStopTimeout  = 10 * time.Second
)

// StartEtcd starts a private etcd (the test bed's binary) on free
// 127.0.0.1 ports with its data in a temporary directory, waits until it
// is healthy and returns its client URL. It is stopped when the test ends.
// Without the binary the test is skipped (fails with PLEXUS_REQUIRE_TESTBED=1).
func StartEtcd(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(BinDir(), "etcd")
	if _, err := os.Stat(bin); err != nil {
		unavailable(t, "etcd binary: %v; run `make testbed`", err)
		return ""
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a port may be taken between picking and binding
		url, err := startEtcdOnce(t, bin)
		if err == nil {
			return url
		}
		lastErr = err
	}
	t.Fatalf("starting etcd: %v", lastErr)
	return ""
}

func startEtcdOnce(t testing.TB, bin string) (string, error) {
	e, err := startEtcdProcess(t, bin)
	if err != nil {
		return "", err
	}
	return e.URL, nil
}

// Etcd is a private etcd that a test may kill and start again, on the
// same ports with the same data (StartRestartableEtcd).
type Etcd struct {
	// URL is the client URL.
	URL string

	t    testing.TB
	bin  string
	args []string
	log  string
	mu   sync.Mutex // guards proc
	proc *process
}

// StartRestartableEtcd is StartEtcd for a test that kills etcd on purpose
// (Kill) and starts it again (Restart). It is stopped when the test ends.
func StartRestartableEtcd(t testing.TB) *Etcd {
	t.Helper()
	bin := filepath.Join(BinDir(), "etcd")
	if _, err := os.Stat(bin); err != nil {
		unavailable(t, "etcd binary: %v; run `make testbed`", err)
		return nil
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a port may be taken between picking and binding
		e, err := startEtcdProcess(t, bin)
		if err == nil {
			return e
		}
		lastErr = err
	}
	t.Fatalf("starting etcd: %v", lastErr)
	return nil
}

func startEtcdProcess(t testing.TB, bin string) (*Etcd, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	dir := t.TempDir()
	client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	e := &Etcd{URL: client, t: t, bin: bin, log: filepath.Join(dir, "etcd.log"), args: []string{
		"--name=test", "--data-dir=" + filepath.Join(dir, "data"),
		"--listen-client-urls=" + client, "--advertise-client-urls=" + client,
		"--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=test=" + peer, "--unsafe-no-fsync", "--log-level=warn"}}
	if err := e.start(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { e.stop(etcdStopTimeout) })
	return e, nil
}

// start runs the process and waits until it is healthy; on failure the
// process is stopped and the error quotes its log.
func (e *Etcd) start() error {
	logFile, err := os.OpenFile(e.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(e.bin, e.args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", e.bin, err)
	}
	proc := watchProcess(cmd)
	e.mu.Lock()
	e.proc = proc
	e.mu.Unlock()
	if err := waitEtcdHealthy(e.t.Context(), e.URL, proc.done); err != nil {
		proc.stop(etcdStopTimeout)
		log, _ := os.ReadFile(e.log)
		return fmt.Errorf("%w; log:\n%s", err, log)
	}
	return nil
}

func (e *Etcd) stop(grace time.Duration) {
	e.mu.Lock()
	p := e.proc
	e.mu.Unlock()
	if p != nil {
		p.stop(grace)
	}
}

// Kill kills etcd with SIGKILL and returns once it is gone.
func (e *Etcd) Kill() { e.stop(0) }

// Restart starts a killed etcd again (same ports, same data) and waits
// until it is healthy.
func (e *Etcd) Restart() error {
	e.stop(etcdStopTimeout)
	return e.start()
}

// process is a started command whose end anyone may wait for, any number of
// times: done is closed once Wait has returned, and err holds its result.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func watchProcess(cmd *exec.Cmd) *process {
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p
}

// stop sends SIGTERM, then SIGKILL after grace, and returns once the process
// is gone. It returns at once when the process has already exited.
func (p *process) stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	if grace <= 0 {
		_ = p.cmd.Process.Kill()
		<-p.done
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// waitEtcdHealthy polls /health for a bounded time, giving up early when
// the process exits (done closed).
func waitEtcdHealthy(ctx context.Context, url string, done <-chan struct{}) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, etcdReadyTimeout, true, func(ctx context.Context) (bool, error) {
		select {
		case <-done:
			return false, errors.New("etcd exited before it was healthy")
		default:
		}
		resp, err := hc.Get(url + "/health")
		if err != nil {
			return false, nil
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(body), `"health":"true"`), nil
	})
}

// freePorts returns n TCP ports free on 127.0.0.1 at the time of the call.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
