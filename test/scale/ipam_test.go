package scale

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/plexus-cni/plexus/pkg/ipam/plugin"
)

// pod is one pod of the run: its Pod object's identity and its node.
type pod struct {
	ns, name, uid, node string
	sandbox             string // the sandbox (container) ID of its ADD
	added               bool   // holds an address (its ADD succeeded, no DEL since)
}

func (p *pod) cniArgs() string {
	return fmt.Sprintf("IgnoreUnknown=1;K8S_POD_NAMESPACE=%s;K8S_POD_NAME=%s;K8S_POD_UID=%s", p.ns, p.name, p.uid)
}

// ipam runs plexus-ipam's ADD and DEL for the run's pods: on a real
// node, the plexus-ipam binary exec'd as a runtime does, which hands the
// request to that node's plexusd (/ipam); on a simulated node, the same
// commands in this process (plugin.Daemon, what plexusd runs), with a
// store client of that node's own, so that every API object and index
// write is real.
type ipam struct {
	conf  []byte
	real  map[string]*plexusd // by node
	bin   string
	mu    sync.Mutex
	nodes map[string]*plugin.Daemon // simulated nodes' daemons
}

func newIPAM(kubeconfig, ipamNS, cidr string, real []*plexusd) *ipam {
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"scale","ipam":{"type":"plexus-ipam","range":%q,"log_level":"error",`+
		`"kubernetes":{"kubeconfig":%q,"namespace":%q}}}`, cidr, kubeconfig, ipamNS)
	m := &ipam{conf: []byte(conf), real: map[string]*plexusd{}, bin: repoBin("plexus-ipam"), nodes: map[string]*plugin.Daemon{}}
	for _, d := range real {
		m.real[d.node] = d
	}
	return m
}

// daemon returns node's in-process daemon (one store client per node, as
// each node's plexusd has).
func (m *ipam) daemon(node string) *plugin.Daemon {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.nodes[node]
	if d == nil {
		base := plugin.Default()
		base.Loader.DefaultPaths = nil // no flat file of this machine's
		d = plugin.NewDaemon(base, nil, plugin.DaemonOptions{})
		m.nodes[node] = d
	}
	return d
}

// do runs command (ADD, DEL) for p and returns how long it took and
// whether it went through a real plexusd.
func (m *ipam) do(ctx context.Context, command string, p *pod) (time.Duration, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	start := time.Now()
	if d := m.real[p.node]; d != nil {
		c := exec.CommandContext(ctx, m.bin)
		c.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND=" + command, "CNI_CONTAINERID=" + p.sandbox,
			"CNI_NETNS=/var/run/netns/" + p.sandbox, "CNI_IFNAME=net1", "CNI_PATH=" + filepath.Dir(m.bin),
			"NODENAME=" + p.node, "CNI_ARGS=" + p.cniArgs(), "PLEXUS_DAEMON_SOCKET=" + d.socket}
		c.Stdin = bytes.NewReader(m.conf)
		var out bytes.Buffer
		c.Stdout, c.Stderr = &out, &out
		err := c.Run()
		if err != nil {
			err = fmt.Errorf("%s %s: %w: %s", command, p.sandbox, err, out.Bytes())
		}
		return time.Since(start), true, err
	}
	req := plugin.Request{Command: command, Env: map[string]string{"NODENAME": p.node}, Args: &skel.CmdArgs{
		ContainerID: p.sandbox, Netns: "/var/run/netns/" + p.sandbox, IfName: "net1", Args: p.cniArgs(),
		Path: filepath.Dir(m.bin), StdinData: m.conf}}
	_, _, err := m.daemon(p.node).Do(ctx, req)
	if err != nil {
		err = fmt.Errorf("%s %s: %w", command, p.sandbox, err)
	}
	return time.Since(start), false, err
}

// close closes the simulated nodes' store clients.
func (m *ipam) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nodes = map[string]*plugin.Daemon{}
}

// phaseResult is one paced phase's figures.
type phaseResult struct {
	ops, failed int
	wall        time.Duration
	all, real   []time.Duration // latencies: every op, those through a real plexusd
	firstErr    error
}

func (r phaseResult) rate() float64 { return float64(r.ops) / r.wall.Seconds() }

// paced runs command for pods at rate per second (open loop: op i starts
// at i/rate whatever the others do, at most inflight at once), until all
// are done or ctx ends.
func (m *ipam) paced(ctx context.Context, command string, pods []*pod, rate float64, inflight int) phaseResult {
	var (
		mu  sync.Mutex
		res phaseResult
		wg  sync.WaitGroup
	)
	sem := make(chan struct{}, inflight)
	start := time.Now()
	for i, p := range pods {
		at := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		select {
		case <-ctx.Done():
		case <-time.After(time.Until(at)):
		}
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			took, viaDaemon, err := m.do(ctx, command, p)
			mu.Lock()
			defer mu.Unlock()
			res.ops++
			if err != nil {
				res.failed++
				if res.firstErr == nil {
					res.firstErr = err
				}
				return
			}
			p.added = command == "ADD"
			res.all = append(res.all, took)
			if viaDaemon {
				res.real = append(res.real, took)
			}
		}()
	}
	wg.Wait()
	res.wall = time.Since(start)
	return res
}

// pct is the p-quantile of d (nearest rank); 0 when d is empty.
func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(float64(len(s)-1)*p+0.5)]
}
