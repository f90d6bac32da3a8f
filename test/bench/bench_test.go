// Package bench is `make bench`: ADD and DEL latency of pods through plexus
// against the same delegates run directly by the runtime, and the API
// requests plexus makes per ADD (read from the API server's own metrics).
// It runs only when PLEXUS_BENCH=1 (hack/bench.sh sets it).
package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/containernetworking/cni/libcni"

	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/internal/testbed/nodesim"
	"github.com/plexus-cni/plexus/pkg/netselect"
)

func intEnv(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

type sample struct{ add, del []time.Duration }

type row struct {
	name     string
	pods     int
	s        sample
	apiPerOp float64 // -1: not applicable
	// cpu is the CPU time the ADDs of the pods took on the node (the
	// runtime's plugins and their children, plexusd), apiCPU the API
	// server's and etcd's meanwhile (the pod's creation by the harness
	// included, for every row alike): both compete for the machine's CPUs.
	cpu, apiCPU time.Duration
}

// addCPU adds to r the CPU time between two cpuSamples around one ADD.
func (r *row) addCPU(before, after map[string]time.Duration) {
	for k, v := range after {
		switch k {
		case "kube-apiserver", "etcd":
			r.apiCPU += v - before[k]
		default:
			r.cpu += v - before[k]
		}
	}
}

func TestBench(t *testing.T) {
	if os.Getenv("PLEXUS_BENCH") != "1" {
		t.Skip("the benchmark runs with PLEXUS_BENCH=1 (make bench)")
	}
	testbed.RequireRoot(t)
	env := testbed.Require(t)
	b := &bench{t: t, env: env, ns: env.Namespace(t, "bench"), sw: nodesim.NewSwitch(t)}
	pods, multi := intEnv("PLEXUS_BENCH_PODS", 200), intEnv("PLEXUS_BENCH_MULTI_PODS", 50)
	for i := 1; i <= 8; i++ {
		env.CreateNAD(t, b.ns, fmt.Sprintf("net-%d", i), b.macvlan(fmt.Sprintf("net-%d", i)))
	}
	one := []string{"net-1"}
	eight := []string{"net-1", "net-2", "net-3", "net-4", "net-5", "net-6", "net-7", "net-8"}
	rows := append(turns(pods,
		b.plexus("plexus: eth0 + 1 network", one, 4),
		b.direct("delegates run directly: eth0 + 1 network", one)),
		turns(multi,
			b.plexus("plexus: eth0 + 8 networks (4 in parallel)", eight, 4),
			b.plexus("plexus: eth0 + 8 networks (one by one)", eight, 1),
			b.direct("delegates run directly: eth0 + 8 networks", eight))...)
	report(rows)
}

type bench struct {
	t   *testing.T
	env *testbed.Env
	ns  string
	sw  *nodesim.Switch
	seq int
}

// macvlan is the secondary network, a conflist used both as a NAD's config
// and as the list the runtime runs directly.
func (b *bench) macvlan(name string) string {
	return fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"plugins":[{"type":"macvlan","master":"uplink0","mode":"bridge",
		"ipam":{"type":"host-local","subnet":"198.51.100.0/24","dataDir":%q}}]}`, name, filepath.Join(b.t.TempDir(), "ipam"))
}

func (b *bench) node(file string, conf func(n *nodesim.Node) string) *nodesim.Node {
	b.seq++
	n := nodesim.NewNode(b.t, b.sw, fmt.Sprintf("bench-%d", b.seq), nodesim.NodeOptions{
		BinDirs: []string{filepath.Join(testbed.Root(), "bin"), testbed.CNIBinDir()},
		Client:  b.env.Client,
		Forward: []string{b.env.APIAddr()},
	})
	if err := n.WriteConfFile(file, conf(n)); err != nil {
		b.t.Fatal(err)
	}
	return n
}

func clusterConf(n *nodesim.Node) string {
	return fmt.Sprintf(`{"cniVersion":"1.0.0","name":"cluster","plugins":[{"type":"bridge","bridge":"cni0","isGateway":true,
		"ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":"203.0.113.0/24"}]]}}]}`, filepath.Join(n.StateDir, "ipam"))
}

// runner runs a scenario's next pods, on the node it was made for, and
// returns their row.
type runner func(pods int) row

// turns runs pods pods of every scenario, one pod of each in turn, so that
// a change of the machine's speed while they run (other work, the host's
// other guests) weighs on every scenario alike: the ratios between them are
// what the benchmark reports.
func turns(pods int, runners ...runner) []row {
	rows := make([]row, len(runners))
	for range pods {
		for i, run := range runners {
			rows[i] = rows[i].merge(run(1))
		}
	}
	return rows
}

// merge adds o's pods to r.
func (r row) merge(o row) row {
	out := row{name: o.name, pods: r.pods + o.pods, apiPerOp: o.apiPerOp, cpu: r.cpu + o.cpu, apiCPU: r.apiCPU + o.apiCPU,
		s: sample{add: append(r.s.add, o.s.add...), del: append(r.s.del, o.s.del...)}}
	if r.pods > 0 && r.apiPerOp >= 0 && o.apiPerOp >= 0 {
		out.apiPerOp = (r.apiPerOp*float64(r.pods) + o.apiPerOp*float64(o.pods)) / float64(out.pods)
	}
	return out
}

// plexus makes a node whose runtime runs plexus in process.
func (b *bench) plexus(name string, networks []string, concurrency int) runner {
	n := b.node("00-plexus.conf", func(n *nodesim.Node) string {
		cluster := filepath.Join(n.StateDir, "cluster.conflist")
		if err := os.WriteFile(cluster, []byte(clusterConf(n)), 0o644); err != nil {
			b.t.Fatal(err)
		}
		return fmt.Sprintf(`{"cniVersion":"1.0.0","name":"plexus-network","type":"plexus","kubeconfig":%q,
			"clusterNetwork":%q,"cniDir":%q,"binDir":%q,"attachConcurrency":%d}`,
			b.env.Kubeconfig, cluster, filepath.Join(n.StateDir, "plexus"), testbed.CNIBinDir(), concurrency)
	})
	ann := map[string]string{netselect.NetworksAnnotation: strings.Join(networks, ",")}
	return func(pods int) row { return b.pods(n, 0, name, ann, pods) }
}

// pods runs pods pods with the annotations ann on n (whose runtime runs
// plexus, in process or as the shim; daemonPID is plexusd's, 0 without)
// and returns their ADD and DEL times, their CPU time and the API requests
// plexus made per ADD.
func (b *bench) pods(n *nodesim.Node, daemonPID int, name string, ann map[string]string, pods int) row {
	var s sample
	requests := 0
	r := row{name: name, pods: pods}
	for i := 0; i < pods; i++ {
		before := b.apiRequests()
		cpuBefore := b.cpuSample(daemonPID)
		p := b.run(n, ann)
		r.addCPU(cpuBefore, b.cpuSample(daemonPID))
		requests += b.apiRequests() - before
		start := time.Now()
		if err := p.Del(context.Background()); err != nil {
			b.t.Fatal(err)
		}
		s.del = append(s.del, time.Since(start))
		s.add = append(s.add, p.AddDuration)
		b.remove(p)
	}
	r.s, r.apiPerOp = s, float64(requests)/float64(pods)
	return r
}

// direct makes a node whose runtime runs the cluster network and then each
// network's conflist itself, as plexus's delegates.
func (b *bench) direct(name string, networks []string) runner {
	n := b.node("10-cluster.conflist", clusterConf)
	lists := make([]*libcni.NetworkConfigList, len(networks))
	for i, net := range networks {
		l, err := libcni.ConfListFromBytes([]byte(b.macvlan(net)))
		if err != nil {
			b.t.Fatal(err)
		}
		lists[i] = l
	}
	return func(pods int) row { return b.directPods(n, name, lists, pods) }
}

func (b *bench) directPods(n *nodesim.Node, name string, lists []*libcni.NetworkConfigList, pods int) row {
	var s sample
	r := row{name: name, pods: pods, apiPerOp: -1}
	for i := 0; i < pods; i++ {
		cpuBefore := b.cpuSample(0)
		p := b.run(n, nil)
		add := p.AddDuration
		start := time.Now()
		for j, l := range lists {
			if _, err := p.Attach(context.Background(), l, fmt.Sprintf("net%d", j+1)); err != nil {
				b.t.Fatal(err)
			}
		}
		s.add = append(s.add, add+time.Since(start))
		r.addCPU(cpuBefore, b.cpuSample(0))
		start = time.Now()
		for j := len(lists) - 1; j >= 0; j-- {
			if err := p.Detach(context.Background(), lists[j], fmt.Sprintf("net%d", j+1)); err != nil {
				b.t.Fatal(err)
			}
		}
		if err := p.Del(context.Background()); err != nil {
			b.t.Fatal(err)
		}
		s.del = append(s.del, time.Since(start))
		b.remove(p)
	}
	r.s = s
	return r
}

func (b *bench) run(n *nodesim.Node, ann map[string]string) *nodesim.Pod {
	p, err := n.RunPod(context.Background(), b.t, nodesim.PodSpec{Namespace: b.ns, Annotations: ann})
	if err != nil {
		b.t.Fatal(err)
	}
	return p
}

func (b *bench) remove(p *nodesim.Pod) {
	if err := p.Remove(context.Background()); err != nil {
		b.t.Fatal(err)
	}
}

// plexusRequests are the metric series of the requests plexus makes on ADD
// (the harness's own pod creation and deletion are not among them).
var plexusRequests = []string{
	`resource="pods",scope="resource",subresource="",verb="GET"`,
	`resource="network-attachment-definitions",scope="resource",subresource="",verb="GET"`,
	`resource="network-attachment-definitions",scope="namespace",subresource="",verb="LIST"`,
	`resource="pods",scope="resource",subresource="status",verb="PATCH"`,
	`resource="events",scope="resource",subresource="",verb="POST"`,
	`resource="events",scope="namespace",subresource="",verb="POST"`,
}

// apiRequests sums apiserver_request_total over the series plexus uses.
func (b *bench) apiRequests() int {
	return b.apiserverRequests(func(line string) bool {
		return slices.ContainsFunc(plexusRequests, func(s string) bool { return strings.Contains(line, s) })
	})
}

// apiserverRequests sums the apiserver_request_total series that match
// selects, read from the API server's own metrics.
func (b *bench) apiserverRequests(match func(series string) bool) int {
	raw, err := b.env.Client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		b.t.Fatalf("read API server metrics: %v", err)
	}
	total := 0
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") || !match(line) {
			continue
		}
		if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
			total += int(v)
		}
	}
	return total
}

func pct(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p)
	return s[i]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func report(rows []row) {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "scenario\tpods\tADD p50\tADD p99\tDEL p50\tDEL p99\tAPI requests/ADD\tCPU/ADD node\tCPU/ADD API\t")
	for _, r := range rows {
		api := "-"
		if r.apiPerOp >= 0 {
			api = fmt.Sprintf("%.1f", r.apiPerOp)
		}
		n := time.Duration(max(r.pods, 1))
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.name, r.pods,
			ms(pct(r.s.add, .5)), ms(pct(r.s.add, .99)), ms(pct(r.s.del, .5)), ms(pct(r.s.del, .99)), api,
			ms(r.cpu/n), ms(r.apiCPU/n))
	}
	w.Flush()
	overhead := func(p, d row) {
		fmt.Printf("plexus overhead, %s: ADD p50 %s, p99 %s; DEL p50 %s, p99 %s\n", strings.TrimPrefix(p.name, "plexus: "),
			ms(pct(p.s.add, .5)-pct(d.s.add, .5)), ms(pct(p.s.add, .99)-pct(d.s.add, .99)),
			ms(pct(p.s.del, .5)-pct(d.s.del, .5)), ms(pct(p.s.del, .99)-pct(d.s.del, .99)))
	}
	fmt.Println()
	overhead(rows[0], rows[1])
	overhead(rows[2], rows[4])
	overhead(rows[3], rows[4])
}
