package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/netip"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/plexus-cni/plexus/pkg/ipam/store/nodelock"
)

// lockGroups is how many nodes' lock directories the runtimes use.
const lockGroups = 4

// execTimeout is the runtime's bound on one plugin call.
const execTimeout = 90 * time.Second

// plugin runs the plexus-ipam binary as a runtime does: CNI_* variables,
// the network configuration on stdin, the result on stdout.
type plugin struct {
	bin  string
	conf []byte
	node string
	// socket, when set, is plexusd's (PLEXUS_DAEMON_SOCKET): plexus-ipam
	// hands its requests to the daemon while it answers.
	socket string
	// locks holds the node-lock directories (nodelock.DirEnv) of
	// lockGroups simulated nodes: a sandbox's calls take their turns in
	// the group its ID picks, so that processes still race across groups.
	locks string

	mu      sync.Mutex
	addEWMA time.Duration // typical ADD duration, for kill delays
}

// outcome is one call's end.
type outcome struct {
	addr   netip.Addr
	killed bool // SIGKILLed by us while it ran
	err    error
	took   time.Duration
}

// call runs cmd for sb; with killAfter > 0 the process gets SIGKILL after
// that long if it still runs.
func (p *plugin) call(ctx context.Context, cmd string, sb *sandbox, killAfter time.Duration) outcome {
	ctx, cancel := context.WithTimeout(ctx, execTimeout)
	defer cancel()
	c := exec.CommandContext(ctx, p.bin)
	c.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND=" + cmd, "CNI_CONTAINERID=" + sb.id,
		"CNI_NETNS=/var/run/netns/" + sb.id, "CNI_IFNAME=net1", "CNI_PATH=" + filepath.Dir(p.bin), "NODENAME=" + p.node,
		fmt.Sprintf("CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=%s;K8S_POD_NAME=%s;K8S_POD_UID=%s", sb.ns, sb.pod, sb.uid)}
	if p.socket != "" {
		c.Env = append(c.Env, "PLEXUS_DAEMON_SOCKET="+p.socket)
	}
	if p.locks != "" {
		h := fnv.New32a()
		h.Write([]byte(sb.id))
		c.Env = append(c.Env, fmt.Sprintf("%s=%s/node-%d", nodelock.DirEnv, p.locks, h.Sum32()%lockGroups))
	}
	c.Stdin = bytes.NewReader(p.conf)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	start := time.Now()
	if err := c.Start(); err != nil {
		return outcome{err: err}
	}
	if killAfter > 0 {
		timer := time.AfterFunc(killAfter, func() { _ = c.Process.Kill() })
		defer timer.Stop()
	}
	err := c.Wait()
	o := outcome{took: time.Since(start)}
	if ws, ok := c.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL && ctx.Err() == nil {
		o.killed = true
	}
	if err != nil {
		o.err = fmt.Errorf("%s %s: %w: %s%s", cmd, sb.id, err, stdout.Bytes(), stderr.Bytes())
		return o
	}
	if cmd == "ADD" {
		p.noteAdd(o.took)
		o.addr, o.err = firstAddress(stdout.Bytes())
	}
	return o
}

func firstAddress(out []byte) (netip.Addr, error) {
	var res struct {
		IPs []struct {
			Address string `json:"address"`
		} `json:"ips"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.IPs) == 0 {
		return netip.Addr{}, fmt.Errorf("ADD result %q: no address (%v)", out, err)
	}
	pfx, err := netip.ParsePrefix(res.IPs[0].Address)
	return pfx.Addr(), err
}

func (p *plugin) noteAdd(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.addEWMA == 0 {
		p.addEWMA = d
	}
	p.addEWMA = (7*p.addEWMA + d) / 8
}

// typicalAdd is the moving average of successful ADDs (200ms at first).
func (p *plugin) typicalAdd() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.addEWMA == 0 {
		return 200 * time.Millisecond
	}
	return p.addEWMA
}
