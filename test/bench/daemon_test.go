package bench

import (
	"bufio"
	"context"
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
	"text/tabwriter"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/internal/testbed/nodesim"
	"github.com/plexus-cni/plexus/pkg/netselect"
)

// TestBenchDaemon compares plexus in process with plexus as a shim in
// front of plexusd (informer reads, one resident process), and measures
// plexusd's peak memory while 50 ADDs arrive at once.
func TestBenchDaemon(t *testing.T) {
	if os.Getenv("PLEXUS_BENCH") != "1" {
		t.Skip("the benchmark runs with PLEXUS_BENCH=1 (make bench)")
	}
	testbed.RequireRoot(t)
	env := testbed.Require(t)
	b := &bench{t: t, env: env, ns: env.Namespace(t, "bench-daemon"), sw: nodesim.NewSwitch(t)}
	pods, burst := intEnv("PLEXUS_BENCH_PODS", 200), intEnv("PLEXUS_BENCH_BURST", 50)
	env.CreateNAD(t, b.ns, "net-1", b.macvlan("net-1"))
	one := []string{"net-1"}
	d := b.daemonNode()
	lat := turns(pods, b.plexus("plexus in process: eth0 + 1 network", one, 4),
		b.sequential(d, "plexus via plexusd: eth0 + 1 network", one),
		b.direct("delegates run directly: eth0 + 1 network", one))
	inProcess, daemon, direct := lat[0], lat[1], lat[2]
	conc, rss := b.burst(d, burst, one)

	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "scenario\tpods\tADD p50\tADD p99\tDEL p50\tDEL p99\tAPI requests/ADD\t")
	for _, r := range []row{inProcess, daemon, direct, conc} {
		api := "-"
		if r.apiPerOp >= 0 {
			api = fmt.Sprintf("%.1f", r.apiPerOp)
		}
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t\n", r.name, r.pods,
			ms(pct(r.s.add, .5)), ms(pct(r.s.add, .99)), ms(pct(r.s.del, .5)), ms(pct(r.s.del, .99)), api)
	}
	w.Flush()
	fmt.Println()
	for _, r := range []row{inProcess, daemon} {
		fmt.Printf("plexus overhead, %s: ADD p50 %s, p99 %s; DEL p50 %s, p99 %s\n", r.name,
			ms(pct(r.s.add, .5)-pct(direct.s.add, .5)), ms(pct(r.s.add, .99)-pct(direct.s.add, .99)),
			ms(pct(r.s.del, .5)-pct(direct.s.del, .5)), ms(pct(r.s.del, .99)-pct(direct.s.del, .99)))
	}
	fmt.Printf("plexusd peak RSS (VmHWM) with %d concurrent ADDs: %s\n", burst, rss)
}

// daemonNode is a node whose conf dir holds only the primary; plexusd
// installs plexus and writes 00-plexus.conflist.
type daemonNode struct {
	*nodesim.Node
	cmd *exec.Cmd
}

// daemonNode starts plexusd with the benchmark's flags, then extra.
func (b *bench) daemonNode(extra ...string) *daemonNode {
	b.seq++
	bin := filepath.Join(b.t.TempDir(), "bin")
	n := nodesim.NewNode(b.t, b.sw, fmt.Sprintf("bench-d-%d", b.seq), nodesim.NodeOptions{
		BinDirs: []string{bin, testbed.CNIBinDir()}, Client: b.env.Client, Forward: []string{b.env.APIAddr()},
	})
	if err := n.WriteConfFile("10-cluster.conflist", clusterConf(n)); err != nil {
		b.t.Fatal(err)
	}
	root := testbed.Root()
	args := append([]string{"--net=" + n.NetNSPath, "--", filepath.Join(root, "bin", "plexusd"),
		"--node-name=" + n.Name, "--conf-dir=" + n.ConfDir, "--bin-dir=" + bin, "--source-bin-dir=" + filepath.Join(root, "bin"),
		"--cni-dir=" + filepath.Join(n.StateDir, "plexus"), "--socket-path=" + filepath.Join(n.StateDir, "run", "plexusd.sock"),
		"--kubeconfig=" + b.env.Kubeconfig, "--plugin-kubeconfig=", "--metrics-address=127.0.0.1:9091",
		"--log-level=error", "--concurrency=16", "--queue-length=64"}, extra...)
	cmd := exec.Command("nsenter", args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	d := &daemonNode{Node: n, cmd: cmd}
	deadline := time.Now().Add(time.Minute)
	for !d.ready() {
		if time.Now().After(deadline) {
			b.t.Fatal("plexusd not ready after a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return d
}

// fetch GETs path from plexusd's metrics address inside the node's
// namespace and returns the status code and body.
func (d *daemonNode) fetch(path string, timeout time.Duration) (int, string, error) {
	var conn net.Conn
	err := ns.WithNetNSPath(d.NetNSPath, func(ns.NetNS) error {
		var err error
		conn, err = net.DialTimeout("tcp", "127.0.0.1:9091", time.Second)
		return err
	})
	if err != nil {
		return 0, "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	fmt.Fprintf(conn, "GET %s HTTP/1.0\r\nHost: plexusd\r\n\r\n", path)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// get reads path from plexusd, failing the test unless it answers 200.
func (d *daemonNode) get(t *testing.T, path string) string {
	code, body, err := d.fetch(path, 10*time.Second)
	if err != nil || code != http.StatusOK {
		t.Fatalf("plexusd on %s: GET %s: HTTP %d, %v", d.Name, path, code, err)
	}
	return body
}

// ready asks plexusd's /readyz.
func (d *daemonNode) ready() bool {
	code, _, err := d.fetch("/readyz", 2*time.Second)
	return err == nil && code == http.StatusOK
}

// sequential is a runner of pods through d's plexusd, one after another.
func (b *bench) sequential(d *daemonNode, name string, networks []string) runner {
	ann := map[string]string{netselect.NetworksAnnotation: strings.Join(networks, ",")}
	return func(pods int) row { return b.pods(d.Node, d.cmd.Process.Pid, name, ann, pods) }
}

// burst starts n ADDs at once through plexusd and returns their latencies
// and plexusd's peak resident set size afterwards.
func (b *bench) burst(d *daemonNode, n int, networks []string) (row, string) {
	ann := map[string]string{netselect.NetworksAnnotation: strings.Join(networks, ",")}
	pods := make([]*nodesim.Pod, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pods[i], errs[i] = d.RunPod(context.Background(), b.t, nodesim.PodSpec{Namespace: b.ns, Annotations: ann})
		}()
	}
	wg.Wait()
	rss := vmHWM(b.t, d.cmd.Process.Pid)
	var s sample
	for i, p := range pods {
		if errs[i] != nil {
			b.t.Fatalf("concurrent ADD %d: %v", i, errs[i])
		}
		s.add = append(s.add, p.AddDuration)
	}
	var mu sync.Mutex
	for _, p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			if err := p.Del(context.Background()); err != nil {
				b.t.Error(err)
			}
			mu.Lock()
			s.del = append(s.del, time.Since(start))
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, p := range pods {
		b.remove(p)
	}
	return row{name: fmt.Sprintf("plexusd, %d ADDs at once", n), pods: n, s: s, apiPerOp: -1}, rss
}

func vmHWM(t *testing.T, pid int) string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
