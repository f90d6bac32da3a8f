package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/plexus-cni/plexus/internal/inspect"
	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/internal/testbed/nodesim"
)

// TestBenchSummary is the table of `make bench`: in one run, ADD and DEL of
// pods with the same delegates run directly by the runtime, through plexus
// in process and through plexusd (plexus-shim), the three taking turns pod
// by pod; then plexus-ipam's
// throughput on the Kubernetes store, in process and through plexusd's
// /ipam. Ratios are against the delegates run directly (latency) or as
// stated; Whereabouts' published figures are printed beside plexus-ipam's.
// The machine's load is printed before and after.
func TestBenchSummary(t *testing.T) {
	if os.Getenv("PLEXUS_BENCH") != "1" {
		t.Skip("the benchmark runs with PLEXUS_BENCH=1 (make bench)")
	}
	testbed.RequireRoot(t)
	env := testbed.Require(t)
	loadBefore := loadavg(t)
	// Start times first, while nothing else of the benchmark runs.
	starts := map[string]time.Duration{}
	for _, bin := range []string{filepath.Join(testbed.CNIBinDir(), "bridge"), filepath.Join(testbed.CNIBinDir(), "host-local")} {
		starts[filepath.Base(bin)] = startTime(t, bin)
	}
	for _, name := range []string{"plexus", "plexus-shim", "plexus-ipam", "plexus-ipam-local"} {
		starts[name] = startTime(t, filepath.Join(testbed.Root(), "bin", name))
	}
	b := &bench{t: t, env: env, ns: env.Namespace(t, "bench-sum"), sw: nodesim.NewSwitch(t)}
	pods, multi := intEnv("PLEXUS_BENCH_PODS", 200), intEnv("PLEXUS_BENCH_MULTI_PODS", 50)
	var eight []string
	for i := 1; i <= 8; i++ {
		name := fmt.Sprintf("net-%d", i)
		env.CreateNAD(t, b.ns, name, b.macvlan(name))
		eight = append(eight, name)
	}
	one := eight[:1]
	d := b.daemonNode()
	// The three ways take turns, pod by pod (turns): the ratios do not
	// depend on how fast the machine was while one of them ran.
	lat := map[string]row{}
	for _, size := range []struct {
		n        string
		pods     int
		networks []string
	}{{"1", pods, one}, {"8", multi, eight}} {
		for _, r := range turns(size.pods, b.direct("direct "+size.n, size.networks),
			b.plexus("process "+size.n, size.networks, 4), b.sequential(d, "daemon "+size.n, size.networks)) {
			lat[r.name] = r
		}
	}
	// Where plexusd's ADDs (both sizes) spent their time, from its own
	// phase histogram: plexus's share against its delegates'.
	phases, err := inspect.ParseLatency(strings.NewReader(d.get(t, "/metrics")))
	if err != nil {
		t.Fatal(err)
	}

	ipamNS := env.Namespace(t, "bench-sum-ipam")
	di := b.daemonNode("--ipam-namespace=" + ipamNS)
	burst, rounds := intEnv("PLEXUS_BENCH_IPAM_BURST", 40), intEnv("PLEXUS_BENCH_IPAM_ROUNDS", 5)
	many := intEnv("PLEXUS_BENCH_IPAM_PODS", 1000)
	conf := func(name string) []byte {
		return []byte(fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"ipam":{"type":"plexus-ipam","range":"10.128.0.0/16",`+
			`"kubernetes":{"kubeconfig":%q,"namespace":%q}}}`, name, env.Kubeconfig, ipamNS))
	}
	socket := filepath.Join(di.StateDir, "run", "plexusd.sock")
	ipProc := b.ipamBursts(conf("burst-process"), "", 0, burst, rounds)
	ipDaemon := b.ipamBursts(conf("burst-daemon"), socket, di.cmd.Process.Pid, burst, rounds)
	manyProc := b.ipamMany(conf("many-process"), "", many)
	manyDaemon := b.ipamMany(conf("many-daemon"), socket, many)
	loadAfter := loadavg(t)

	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	writeLatency(w, lat)
	fmt.Fprintf(w, "plexus-ipam: %d execs at once, allocations/s (median of %d)\t-\t%.0f/s\t%.0f/s\tin process ≥60/s, plexusd ≥200/s\tWhereabouts ~1/s cluster-wide (Spiderpool benchmark)\n",
		burst, rounds, ipProc.rate, ipDaemon.rate)
	fmt.Fprintf(w, "plexus-ipam: API requests per allocation, %d at once\t-\t%.1f\t%.1f\t≤4\t\n", burst, ipProc.requests, ipDaemon.requests)
	fmt.Fprintf(w, "plexus-ipam: %d pods' IPAM through the binary, 50 at a time\t-\t%s\t%s\t≤10 s\tWhereabouts v0.6.1: 1000 pods in 8m16s (Spiderpool benchmark)\n",
		many, manyProc.wall.Round(10*time.Millisecond), manyDaemon.wall.Round(10*time.Millisecond))
	fmt.Fprintf(w, "plexus-ipam: API requests per allocation, 50 at once\t-\t%.1f\t%.1f\t≤4\t\n", manyProc.requests, manyDaemon.requests)
	fmt.Fprintf(w, "start and answer VERSION, median of 50 execs\tbridge %s, host-local %s\tplexus %s, plexus-ipam-local %s\tplexus-shim %s, plexus-ipam %s\tshim ≤3 ms, plexus-ipam ≤5 ms\t\n",
		ms(starts["bridge"]), ms(starts["host-local"]), ms(starts["plexus"]), ms(starts["plexus-ipam-local"]),
		ms(starts["plexus-shim"]), ms(starts["plexus-ipam"]))
	w.Flush()
	fmt.Println("\nplexusd's ADD phases over the latency rows above (plexusctl latency):")
	if err := inspect.WriteLatency(os.Stdout, d.Name, phases); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("CPU time per allocation, %d plexus-ipam at once: in process: %s; through plexusd: %s\n",
		burst, cpuLine(ipProc.cpu), cpuLine(ipDaemon.cpu))
	fmt.Printf("load average (1, 5, 15 min) before: %s; after: %s; %d CPUs\n", loadBefore, loadAfter, runtimeCPUs())
}

type ipamFigures struct {
	rate     float64       // allocations per second
	wall     time.Duration // first ADD to last
	requests float64       // API requests on plexus.dev objects per allocation
	// cpu is the CPU time per allocation of the ADDs, by process: the
	// plugin processes the runtime execs (with their children), plexusd,
	// kube-apiserver and etcd.
	cpu map[string]time.Duration
}

// writeLatency writes the latency and CPU lines of the summary table, from
// the rows of the three ways ("direct N", "process N", "daemon N").
func writeLatency(w io.Writer, lat map[string]row) {
	ratio := func(a, b time.Duration) string { return fmt.Sprintf("%.2f×", float64(a)/float64(b)) }
	p50 := func(r row, del bool) time.Duration {
		if del {
			return pct(r.s.del, .5)
		}
		return pct(r.s.add, .5)
	}
	fmt.Fprintln(w, "\nfigure\tdelegates directly\tplexus in process\tplexus via plexusd\ttarget\treference")
	for _, n := range []string{"1", "8"} {
		for _, del := range []bool{false, true} {
			op := "ADD"
			if del {
				op = "DEL"
			}
			dr, pr, dm := lat["direct "+n], lat["process "+n], lat["daemon "+n]
			target := "in process ≤1.3×, plexusd ≤1.0×"
			if n == "8" || del {
				target = "-"
			}
			fmt.Fprintf(w, "%s p50, eth0 + %s network(s), %d pods\t%s\t%s (%s)\t%s (%s)\t%s\t\n", op, n, dr.pods,
				ms(p50(dr, del)), ms(p50(pr, del)), ratio(p50(pr, del), p50(dr, del)),
				ms(p50(dm, del)), ratio(p50(dm, del), p50(dr, del)), target)
		}
	}
	perADD := func(r row) string {
		n := time.Duration(max(r.pods, 1))
		return fmt.Sprintf("%s + API %s", ms(r.cpu/n), ms(r.apiCPU/n))
	}
	for _, n := range []string{"1", "8"} {
		fmt.Fprintf(w, "CPU time per ADD, eth0 + %s network(s): node + API server and etcd\t%s\t%s\t%s\t-\t\n", n,
			perADD(lat["direct "+n]), perADD(lat["process "+n]), perADD(lat["daemon "+n]))
	}
	fmt.Fprintf(w, "ADD p50, eth0 + 8 against eth0 + 1\t%s\t%s\t%s\tplexusd ≤1.3×\t\n",
		ratio(p50(lat["direct 8"], false), p50(lat["direct 1"], false)),
		ratio(p50(lat["process 8"], false), p50(lat["process 1"], false)),
		ratio(p50(lat["daemon 8"], false), p50(lat["daemon 1"], false)))
}

// cpuSample reads the CPU time used so far by the processes a run
// measures: "execs" (the test's waited-for children and theirs), plexusd
// (daemonPID, 0: none), kube-apiserver and etcd of the test bed.
func (b *bench) cpuSample(daemonPID int) map[string]time.Duration {
	out := map[string]time.Duration{}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err == nil {
		out["execs"] = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	pids := map[string]int{"plexusd": daemonPID}
	for _, name := range []string{"kube-apiserver", "etcd"} {
		// The test bed's pid files hold "PID PATH".
		raw, err := os.ReadFile(filepath.Join(testbed.Dir(), "run", name+".pid"))
		if f := strings.Fields(string(raw)); err == nil && len(f) > 0 {
			pids[name], _ = strconv.Atoi(f[0])
		}
	}
	for name, pid := range pids {
		if pid > 0 {
			out[name] = procCPU(pid)
		}
	}
	return out
}

// procCPU is a process's user + system time from /proc/PID/stat, with
// that of its children it waited for (plexusd's delegates).
func procCPU(pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	if len(f) < 15 {
		return 0
	}
	var ticks int64
	for _, v := range f[11:15] { // utime, stime, cutime, cstime
		n, _ := strconv.ParseInt(v, 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

func cpuPerAlloc(before, after map[string]time.Duration, allocs int) map[string]time.Duration {
	out := map[string]time.Duration{}
	for k, v := range after {
		out[k] = (v - before[k]) / time.Duration(allocs)
	}
	return out
}

func cpuLine(cpu map[string]time.Duration) string {
	var parts []string
	var total time.Duration
	for _, k := range []string{"execs", "plexusd", "kube-apiserver", "etcd"} {
		if v, ok := cpu[k]; ok && (k != "plexusd" || v > 0) {
			parts = append(parts, fmt.Sprintf("%s %s", k, ms(v)))
			total += v
		}
	}
	return fmt.Sprintf("%s; total %s", strings.Join(parts, ", "), ms(total))
}

// ipamBursts runs rounds of n plexus-ipam ADDs started at once (then their
// DELs, at once), as a runtime execs it; socket names plexusd's socket
// ("": in process). Every address of a round must be distinct.
func (b *bench) ipamBursts(conf []byte, socket string, daemonPID, n, rounds int) ipamFigures {
	var rates []float64
	var reqs, allocs int
	cpu := map[string]time.Duration{}
	for r := range rounds {
		before := b.ipamRequests()
		cpuBefore := b.cpuSample(daemonPID)
		start := time.Now()
		b.ipamAll(conf, socket, "ADD", r*n, n, n)
		wall := time.Since(start)
		for k, v := range cpuPerAlloc(cpuBefore, b.cpuSample(daemonPID), n) {
			cpu[k] += v / time.Duration(rounds)
		}
		reqs += b.ipamRequests() - before
		allocs += n
		rates = append(rates, float64(n)/wall.Seconds())
		b.ipamAll(conf, socket, "DEL", r*n, n, n)
	}
	slices.Sort(rates)
	return ipamFigures{rate: rates[len(rates)/2], requests: float64(reqs) / float64(allocs), cpu: cpu}
}

// ipamMany runs n pods' IPAM, 50 at a time, first ADD to last.
func (b *bench) ipamMany(conf []byte, socket string, n int) ipamFigures {
	before := b.ipamRequests()
	start := time.Now()
	b.ipamAll(conf, socket, "ADD", 0, n, 50)
	wall := time.Since(start)
	reqs := b.ipamRequests() - before
	b.ipamAll(conf, socket, "DEL", 0, n, 50)
	return ipamFigures{rate: float64(n) / wall.Seconds(), wall: wall, requests: float64(reqs) / float64(n)}
}

// ipamAll runs command for pods first..first+n-1, parallel at a time, and
// fails the test on any error or any address given twice.
func (b *bench) ipamAll(conf []byte, socket, command string, first, n, parallel int) {
	bin := filepath.Join(testbed.Root(), "bin", "plexus-ipam")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var extra []string
	if socket != "" {
		extra = []string{"PLEXUS_DAEMON_SOCKET=" + socket}
	}
	exec := &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}}
	var mu sync.Mutex
	seen := map[string]int{}
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				args := &invoke.Args{Command: command, ContainerID: fmt.Sprintf("bench%058d", i), NetNS: "/var/run/netns/bench",
					IfName: "net1", Path: filepath.Dir(bin),
					PluginArgsStr: fmt.Sprintf("IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=pod-%d;K8S_POD_UID=uid-%d", i, i)}
				environ := append(args.AsEnv(), extra...)
				out, err := exec.ExecPlugin(ctx, bin, conf, environ)
				if err != nil {
					b.t.Errorf("%s %d: %v", command, i, err)
					continue
				}
				if command != "ADD" {
					continue
				}
				res, err := current.NewResult(out)
				if err != nil {
					b.t.Errorf("ADD %d: result %s: %v", i, out, err)
					continue
				}
				r, _ := current.NewResultFromResult(res)
				mu.Lock()
				for _, ip := range r.IPs {
					if prev, dup := seen[ip.Address.String()]; dup {
						b.t.Errorf("address %s handed to pod %d and pod %d", ip.Address, prev, i)
					}
					seen[ip.Address.String()] = i
				}
				mu.Unlock()
			}
		}()
	}
	for i := first; i < first+n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if b.t.Failed() {
		b.t.FailNow()
	}
}

// ipamRequests sums apiserver_request_total over plexus-ipam's resources.
func (b *bench) ipamRequests() int {
	return b.apiserverRequests(func(series string) bool { return strings.Contains(series, `group="plexus.dev"`) })
}

func loadavg(t *testing.T) string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(raw))
	return strings.Join(f[:3], " ")
}

func runtimeCPUs() int { return runtime.NumCPU() }

// startTime is the median wall time of 50 execs of bin answering VERSION,
// as a runtime asks it.
func startTime(t *testing.T, bin string) time.Duration {
	var d []time.Duration
	for range 50 {
		cmd := osexec.Command(bin)
		cmd.Env = []string{"CNI_COMMAND=VERSION"}
		cmd.Stdin = strings.NewReader(`{"cniVersion":"1.0.0"}`)
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s VERSION: %v\n%s", bin, err, out)
		}
		d = append(d, time.Since(start))
	}
	return pct(d, .5)
}
