package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/internal/testbed/nodesim"
	"github.com/plexus-cni/plexus/pkg/netselect"
)

// killWrapper stands in for a CNI plugin: on ADD, with probability
// PCT %, it runs the real plugin and SIGKILLs it after 0 to 199 ms (a
// delegate killed mid-ADD); otherwise it execs it. Kills that hit a
// running plugin are counted as lines of KILLS.
const killWrapper = `#!/bin/sh
real=%[1]s/$(basename "$0")
rnd() { echo $(($(od -An -N2 -tu2 /dev/urandom) %% $1)); }
if [ "$CNI_COMMAND" = ADD ] && [ "$(rnd 100)" -lt %[2]d ]; then
	exec 3<&0
	"$real" <&3 &
	pid=$!
	sleep "0.$(printf %%03d "$(rnd 200)")"
	kill -9 "$pid" 2>/dev/null
	wait "$pid"
	rc=$?
	[ "$rc" -eq 137 ] && echo killed >>%[3]s
	exit "$rc"
fi
exec "$real"
`

// metaRun is the meta-plugin suite: pods with two macvlan networks (and
// the bridge cluster network) added and deleted through the plexus binary
// (libcni, as containerd runs it) on a simulated node whose plexusd
// serves the shim, while the delegates are killed mid-ADD, plexusd is
// killed and restarted, and the API server is stopped and started (so
// DELs run without it).
type metaRun struct {
	t      *testing.T
	env    *testbed.Env
	cfg    config
	ns     string
	node   *nodesim.Node
	daemon *plexusd
	hl     string // host-local dataDir of the secondary networks
	kills  string // the wrappers' kill counter file

	cycles, addOK, dels, apiStops, daemonKills atomic.Int64
	delsAPIDown                                atomic.Int64 // DELs started while the API server was down
	apiDown                                    atomic.Bool
	leftIfaces, debris                         atomic.Int64
	mu                                         sync.Mutex
	undeleted                                  int
}

func newMetaRun(t *testing.T, env *testbed.Env, cfg config) *metaRun {
	testbed.RequireRoot(t)
	real := testbed.RequireCNIPlugins(t, "macvlan", "bridge", "host-local")
	plexus := filepath.Join(testbed.Root(), "bin", "plexus")
	if _, err := os.Stat(plexus); err != nil {
		t.Fatalf("%v: run `make build`", err)
	}
	m := &metaRun{t: t, env: env, cfg: cfg, ns: env.Namespace(t, "chaos-meta"), kills: filepath.Join(t.TempDir(), "kills")}
	wrappers := t.TempDir()
	for _, p := range []string{"macvlan", "bridge", "host-local"} {
		script := fmt.Sprintf(killWrapper, real, int(cfg.pKillDelegate*100), m.kills)
		if err := os.WriteFile(filepath.Join(wrappers, p), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m.node = nodesim.NewNode(t, nodesim.NewSwitch(t), "chaos-meta", nodesim.NodeOptions{
		BinDirs: []string{filepath.Dir(plexus), wrappers}, Client: env.Client, Forward: []string{env.APIAddr()},
		Logf: fileLog(t, filepath.Join(cfg.logDir, "meta-stderr.log"))})
	m.hl = filepath.Join(m.node.StateDir, "hl")
	m.daemon = startPlexusd(t, env, filepath.Join(cfg.logDir, "plexusd-meta.log"), m.node.NetNSPath, map[string]any{
		"nodeName": m.node.Name, "cniDir": filepath.Join(m.node.StateDir, "plexus"), "serveIPAM": false,
		"logLevel": "error", "concurrency": 8, "queueLength": 64})
	m.writeConfig(wrappers)
	for i, subnet := range []string{"192.0.2.0/24", "198.51.100.0/24"} {
		name := fmt.Sprintf("chaos-%c", 'a'+i)
		env.CreateNAD(t, m.ns, name, fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"type":"macvlan","master":%q,"mode":"bridge",
			"ipam":{"type":"host-local","subnet":%q,"dataDir":%q}}`, name, nodesim.DefaultUplink, subnet, m.hl))
	}
	return m
}

// writeConfig writes plexus's configuration: the cluster network is a
// bridge with host-local in TEST-NET-3; delegates come from wrappers;
// requests go to the node's plexusd.
func (m *metaRun) writeConfig(wrappers string) {
	st := m.node.StateDir
	cluster := filepath.Join(st, "10-cluster.conflist")
	conflist := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"cluster","plugins":[{"type":"bridge","bridge":"cni0","isGateway":true,
		"ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":"203.0.113.0/24","gateway":"203.0.113.1"}]]}}]}`,
		filepath.Join(st, "cluster-ipam"))
	if err := os.WriteFile(cluster, []byte(conflist), 0o644); err != nil {
		m.t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(st, "multus.d"), 0o755); err != nil {
		m.t.Fatal(err)
	}
	conf, _ := json.Marshal(map[string]any{
		"cniVersion": "1.0.0", "name": "plexus-network", "type": "plexus", "kubeconfig": m.env.Kubeconfig,
		"clusterNetwork": cluster, "confDir": filepath.Join(st, "multus.d"), "cniDir": filepath.Join(st, "plexus"),
		"binDir": wrappers, "daemonSocket": m.daemon.socket, "logFile": filepath.Join(m.cfg.logDir, "plexus-meta.log"), "logLevel": "error", "logToStderr": false,
	})
	if err := m.node.WriteConfFile("00-plexus.conf", string(conf)); err != nil {
		m.t.Fatal(err)
	}
}

// metaRound is how many pods a round adds before it deletes them all.
const metaRound = 24

// execute runs rounds until the budget or the time is up: a round adds
// metaRound pods (metaWorkers at once; delegates killed at random), then,
// in one round in three with the API server stopped for as long as they
// take (at most a minute), DELs them all and removes their namespaces;
// plexusd is killed and restarted all along. Then it looks for anything
// left behind.
func (m *metaRun) execute() tableRow {
	start := time.Now()
	work, stop := context.WithTimeout(m.t.Context(), m.cfg.duration)
	defer stop()
	faults, stopFaults := context.WithCancel(m.t.Context())
	daemonDone := make(chan struct{})
	go func() {
		defer close(daemonDone)
		if err := m.daemon.faults(faults, 5, &m.daemonKills); err != nil {
			m.t.Errorf("meta: %v", err)
		}
	}()
	rnd := rand.New(rand.NewPCG(4, uint64(time.Now().UnixNano())))
	for left := m.cfg.metaCycles; left > 0 && work.Err() == nil; left -= metaRound {
		pods := m.addRound(work, min(left, metaRound))
		m.delRound(pods, rnd.IntN(3) == 0)
	}
	stopFaults()
	<-daemonDone
	return m.report(time.Since(start))
}

// parallel runs f(i) for i in [0, n), metaWorkers at once.
func (m *metaRun) parallel(n int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < m.cfg.metaWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				f(i)
			}
		}()
	}
	wg.Wait()
}

// addRound runs n pods' ADDs and returns the pods (a failed ADD's too: a
// DEL is owed).
func (m *metaRun) addRound(ctx context.Context, n int) []*nodesim.Pod {
	spec := nodesim.PodSpec{Namespace: m.ns, Annotations: map[string]string{netselect.NetworksAnnotation: "chaos-a,chaos-b"}}
	pods := make([]*nodesim.Pod, n)
	m.parallel(n, func(i int) {
		var p *nodesim.Pod
		var err error
		// No Pod (nil) means that its object or namespace was not made:
		// the kubelet tries again.
		if !retryUntil(ctx, func() error { p, err = m.node.RunPod(ctx, m.t, spec); return nilIf(p != nil) }) {
			return
		}
		m.cycles.Add(1)
		if err == nil {
			m.addOK.Add(1)
		}
		pods[i] = p
	})
	return slices.DeleteFunc(pods, func(p *nodesim.Pod) bool { return p == nil })
}

// delRound runs the runtime's DEL of every pod, retried until it
// succeeds; with outage the API server is down meanwhile (at most a
// minute). Each pod's namespace must then hold nothing but lo; then the
// namespaces and Pod objects go.
func (m *metaRun) delRound(pods []*nodesim.Pod, outage bool) {
	cleanup, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	delsDone := make(chan struct{})
	apiBack := make(chan struct{})
	if outage {
		if err := testbedScript("stop-apiserver"); err != nil {
			m.t.Errorf("meta: %v", err)
			outage = false
		} else {
			m.apiStops.Add(1)
			m.apiDown.Store(true)
		}
	}
	if outage {
		go func() {
			defer close(apiBack)
			select {
			case <-delsDone:
			case <-time.After(time.Minute):
			}
			err := testbedScript("start-apiserver")
			m.apiDown.Store(false)
			if err != nil {
				m.t.Errorf("meta: %v", err)
			}
		}()
	} else {
		close(apiBack)
	}
	m.parallel(len(pods), func(i int) {
		p := pods[i]
		ok := retryUntil(cleanup, func() error {
			m.dels.Add(1)
			if m.apiDown.Load() {
				m.delsAPIDown.Add(1)
			}
			return p.Del(cleanup)
		})
		if !ok {
			m.mu.Lock()
			m.undeleted++
			m.mu.Unlock()
			m.t.Errorf("DEL of pod %s never succeeded", p.Name)
		}
		m.checkPodLinks(p)
	})
	close(delsDone)
	<-apiBack
	m.parallel(len(pods), func(i int) {
		if err := pods[i].Remove(cleanup); err != nil {
			m.t.Logf("removing pod %s: %v", pods[i].Name, err)
		}
	})
}

// checkPodLinks looks at the pod's namespace after its DEL: an interface
// of an attachment (eth0, net1, net2) is a leak; another one is debris of
// a delegate killed mid-ADD (the reference macvlan plugin creates its
// interface under a temporary name and renames it in the pod; killed in
// between, its DEL cannot find it), which goes with the pod's namespace.
func (m *metaRun) checkPodLinks(p *nodesim.Pod) {
	links, err := p.Links()
	if err != nil {
		m.t.Errorf("links of pod %s: %v", p.Name, err)
		return
	}
	for _, l := range links {
		switch l {
		case "lo":
		case "eth0", "net1", "net2":
			m.leftIfaces.Add(1)
			m.t.Errorf("after DEL pod %s still has %s", p.Name, l)
		default:
			m.debris.Add(1)
			m.t.Logf("after DEL pod %s has %s, left by a killed delegate", p.Name, l)
		}
	}
}

// nilIf returns nil when ok, else an error.
func nilIf(ok bool) error {
	if ok {
		return nil
	}
	return errors.New("no sandbox")
}

// report counts what is left: host-local leases, attachment records,
// interfaces in the pods (counted per cycle) and on the node.
func (m *metaRun) report(wall time.Duration) tableRow {
	st := m.node.StateDir
	leases := 0
	for _, dir := range []string{filepath.Join(m.hl, "chaos-a"), filepath.Join(m.hl, "chaos-b"), filepath.Join(st, "cluster-ipam", "cluster")} {
		held := leasesIn(m.t, dir)
		leases += len(held)
		if len(held) > 0 {
			m.t.Errorf("host-local still holds %v in %s", held, dir)
		}
	}
	records, _ := filepath.Glob(filepath.Join(st, "plexus", "attachments", "*.json"))
	if len(records) > 0 {
		m.t.Errorf("attachment records left: %v", records)
	}
	nodeLinks := m.nodeLeftovers()
	kills := 0
	if b, err := os.ReadFile(m.kills); err == nil {
		kills = strings.Count(string(b), "killed")
	}
	r := tableRow{
		name: "meta-plugin (plexus+plexusd; bridge + 2 macvlan)",
		ops:  fmt.Sprintf("%d ADD (%d ok), %d DEL", m.cycles.Load(), m.addOK.Load(), m.dels.Load()),
		faults: fmt.Sprintf("delegate killed mid-ADD %d; plexusd killed %d; apiserver stopped %d (%d DELs while down)",
			kills, m.daemonKills.Load(), m.apiStops.Load(), m.delsAPIDown.Load()),
		dups: "-",
		leaks: fmt.Sprintf("%d (interfaces %d, leases %d, records %d; killed delegates' debris in pod netns %d)",
			int(m.leftIfaces.Load())+nodeLinks+leases+len(records), int(m.leftIfaces.Load())+nodeLinks, leases, len(records), m.debris.Load()),
		wall: wall,
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r.problems = problemList(map[string]int{"leftover interfaces": int(m.leftIfaces.Load()) + nodeLinks,
		"host-local leases": leases, "attachment records": len(records), "DELs that never succeeded": m.undeleted})
	return r
}

// nodeLeftovers counts interfaces on the node besides lo, the uplink and
// the bridge (a veth whose pod end is gone).
func (m *metaRun) nodeLeftovers() int {
	out, err := m.node.Exec("ip", "-o", "link", "show")
	if err != nil {
		m.t.Errorf("node links: %v", err)
		return 0
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if name != "lo" && name != nodesim.DefaultUplink && name != "cni0" {
			n++
			m.t.Errorf("node interface %s left", name)
		}
	}
	return n
}

// leasesIn lists the addresses host-local holds in dir.
func leasesIn(t *testing.T, dir string) []string {
	t.Helper()
	return testbed.HostLocalLeases(t, dir)
}

// fileLog returns a Logf appending to the file at path (plugins' stderr:
// plexus says when plexusd is away and it runs a DEL itself), so that it
// stays out of the table's output.
func fileLog(t *testing.T, path string) func(string, ...any) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatalf("log file: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	var mu sync.Mutex
	return func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(f, time.Now().Format(time.RFC3339Nano)+" "+format+"\n", args...)
	}
}
