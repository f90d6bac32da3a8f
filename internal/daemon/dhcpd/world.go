package dhcpd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/plexus-cni/plexus/internal/cache"
)

// Node is the World of a real node.
type Node struct {
	// Binary is the reference dhcp plugin (in plexus's image, beside plexusd).
	Binary string
	// Socket is where the plugins dial the daemon, as the node sees it.
	Socket string
	// HostPrefix is the node's root as mounted in plexusd's container
	// (delegateRoot; "" for plexusd's own root). The daemon is started
	// with it, so that it listens at the node's Socket and opens the
	// node's network namespace paths, as the delegates, chrooted there,
	// expect.
	HostPrefix string
	// Records are the node's attachment records.
	Records *cache.Store
	// NADConfigs lists the name and spec.config of every NAD (plexusd's
	// cache).
	NADConfigs func() []NADConfig
	// Log receives the daemon's own output, line by line.
	Log func(format string, args ...any)
	// AllocateTimeout bounds one lease taken again (default 1 minute).
	AllocateTimeout time.Duration
}

var _ World = (*Node)(nil)

// NADConfig is a NAD's name and spec.config.
type NADConfig struct {
	Name   string
	Config []byte
}

// socketPath is the socket as plexusd sees it.
func (n *Node) socketPath() string { return n.HostPrefix + n.Socket }

// NADsUse implements World.
func (n *Node) NADsUse() bool {
	for _, c := range n.NADConfigs() {
		if Uses(c.Config, c.Name, n.Socket) {
			return true
		}
	}
	return false
}

// Leases implements World: the leases of every record that can be read
// (one that cannot is the DEL's business, not the daemon's).
func (n *Node) Leases() ([]Lease, error) {
	ids, err := n.Records.List()
	if err != nil {
		return nil, err
	}
	var out []Lease
	for _, id := range ids {
		rec, err := n.Records.Load(id)
		if err != nil {
			continue
		}
		out = append(out, LeasesOf(rec, n.Socket)...)
	}
	return out, nil
}

// Answers implements World.
func (n *Node) Answers() bool {
	c, err := net.DialTimeout("unix", n.socketPath(), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Start implements World: `dhcp daemon`, killed (SIGTERM, so that it
// removes its socket) if plexusd dies.
func (n *Node) Start() (Process, error) {
	if _, err := os.Stat(n.Binary); err != nil {
		return nil, fmt.Errorf("the dhcp plugin %s: %w", n.Binary, err)
	}
	// Nothing answers on it (Answers said so): a daemon killed before it
	// could remove it left it, and the new one could not listen there.
	if err := os.Remove(n.socketPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("removing the stale socket: %w", err)
	}
	args := []string{"daemon", "-socketpath", n.Socket}
	if n.HostPrefix != "" {
		args = append(args, "-hostprefix", n.HostPrefix)
	}
	cmd := exec.Command(n.Binary, args...)
	out, w := io.Pipe()
	cmd.Stdout, cmd.Stderr = w, w
	// Its own session: a signal to plexusd's process group is not its.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setsid: true}
	p := &process{done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Pdeathsig follows the thread that started the child: this
		// goroutine keeps its thread until the child has exited.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			w.Close()
			return
		}
		p.pid = cmd.Process.Pid
		started <- nil
		p.err = cmd.Wait()
		w.Close()
		close(p.done)
	}()
	go n.relay(out)
	if err := <-started; err != nil {
		return nil, fmt.Errorf("starting %s: %w", n.Binary, err)
	}
	return p, nil
}

// relay logs the daemon's output line by line.
func (n *Node) relay(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		n.Log("dhcp daemon: %s", sc.Text())
	}
}

// Reacquire implements World. It holds the sandbox's lock, so that no ADD
// or DEL of the sandbox runs meanwhile (a DEL's release must not be undone),
// and skips a lease whose record or network namespace is gone.
func (n *Node) Reacquire(ctx context.Context, l Lease) error {
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	unlock, err := n.Records.Lock(lctx, l.ContainerID)
	cancel()
	if err != nil {
		return err
	}
	defer unlock()
	rec, err := n.Records.Load(l.ContainerID)
	if err != nil {
		return err
	}
	if rec == nil && !n.Records.Adding(l.ContainerID) {
		// Deleted meanwhile: drop the lock file this call made.
		return n.Records.Unlink(l.ContainerID)
	}
	if !holds(rec, l, n.Socket) {
		return nil // gone (or changed) meanwhile: nothing to renew
	}
	if _, err := os.Stat(filepath.Join(n.HostPrefix, l.NetNS)); err != nil {
		return fmt.Errorf("network namespace %s: %w", l.NetNS, err)
	}
	return n.allocate(ctx, l)
}

// holds reports whether rec still has lease l.
func holds(rec *cache.Record, l Lease, socket string) bool {
	for _, have := range LeasesOf(rec, socket) {
		if have.IfName == l.IfName && string(have.Conf) == string(l.Conf) {
			return true
		}
	}
	return false
}

// allocate is the dhcp plugin's own call: DHCP.Allocate over the daemon's
// RPC socket, with the arguments of the ADD.
func (n *Node) allocate(ctx context.Context, l Lease) error {
	timeout := n.AllocateTimeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	c, err := rpc.DialHTTP("unix", n.socketPath())
	if err != nil {
		return fmt.Errorf("dialing the DHCP daemon: %w", err)
	}
	defer c.Close()
	args := &skel.CmdArgs{ContainerID: l.ContainerID, Netns: l.NetNS, IfName: l.IfName, Args: l.Args, StdinData: l.Conf}
	call := c.Go("DHCP.Allocate", args, &current.Result{}, make(chan *rpc.Call, 1))
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-call.Done:
		return call.Error
	case <-t.C:
		return fmt.Errorf("no answer within %v", timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// process is a started daemon.
type process struct {
	pid  int
	done chan struct{}
	err  error
}

func (p *process) Done() <-chan struct{} { return p.done }
func (p *process) Err() error            { return p.err }

func (p *process) Stop(timeout time.Duration) {
	_ = syscall.Kill(p.pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
		<-p.done
	}
}
