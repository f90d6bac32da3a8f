package cluster

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-cni/plexus/internal/testbed/poll"
	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
)

// The DHCP server of these tests: a host on the nodes' segment (the switch
// of hack/cluster.sh) serving part of the macvlan segment.
const (
	dhcpServerAddr = "198.51.100.125"
	dhcpRangeFirst = "198.51.100.101"
	dhcpRangeLast  = "198.51.100.110"
	// dnsmasq's shortest lease: the dhcp daemon renews it after a minute.
	dhcpLeaseTime = 2 * time.Minute
	switchNS      = "plexus-cl-sw"
)

// dhcpServer is Debian's dnsmasq, serving DHCP only, in a network namespace
// of its own on the switch.
type dhcpServer struct {
	dir    string // its lease file and log
	netns  string
	cmd    *exec.Cmd
	exited chan struct{}
}

// startDHCPServer starts the server; it and its namespace and link are
// removed when t ends, also on failure.
func startDHCPServer(t *testing.T) *dhcpServer {
	t.Helper()
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		t.Fatalf("dnsmasq missing (Debian package dnsmasq-base; make deps): %v", err)
	}
	id := os.Getpid() % 100000
	s := &dhcpServer{dir: t.TempDir(), netns: fmt.Sprintf("plexus-cl-dhcp%d", id), exited: make(chan struct{})}
	link := fmt.Sprintf("dhcp%d", id)
	t.Cleanup(func() {
		s.stop()
		_ = exec.Command("ip", "-n", switchNS, "link", "del", link).Run()
		_ = exec.Command("ip", "netns", "del", s.netns).Run()
	})
	for _, args := range [][]string{
		{"ip", "netns", "add", s.netns},
		{"ip", "-n", s.netns, "link", "set", "lo", "up"},
		{"ip", "-n", switchNS, "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", s.netns},
		{"ip", "-n", switchNS, "link", "set", link, "master", "br0", "up"},
		{"ip", "-n", s.netns, "addr", "add", dhcpServerAddr + "/26", "dev", "eth0"},
		{"ip", "-n", s.netns, "link", "set", "eth0", "up"},
	} {
		run(t, args...)
	}
	s.cmd = exec.Command("ip", "netns", "exec", s.netns, bin,
		"--keep-in-foreground", "--conf-file=/dev/null", "--port=0", // no DNS
		"--interface=eth0", "--bind-interfaces", "--user=root", "--group=root",
		"--dhcp-authoritative", "--log-dhcp", "--log-facility="+filepath.Join(s.dir, "log"),
		fmt.Sprintf("--dhcp-range=%s,%s,255.255.255.192,%ds", dhcpRangeFirst, dhcpRangeLast, int(dhcpLeaseTime.Seconds())),
		"--dhcp-option=3", // no router: eth0 keeps the pod's default route
		"--dhcp-leasefile="+filepath.Join(s.dir, "leases"))
	s.cmd.Stdout, s.cmd.Stderr = os.Stderr, os.Stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting dnsmasq: %v", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	return s
}

func (s *dhcpServer) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// lease returns the expiry of the server's lease of addr (false: none).
// dnsmasq's lease file: "<expiry> <mac> <address> <hostname> <client-id>".
func (s *dhcpServer) lease(t *testing.T, addr string) (time.Time, bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dir, "leases"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[2] == addr {
			sec, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				t.Fatalf("lease file line %q: %v", line, err)
			}
			return time.Unix(sec, 0), true
		}
	}
	return time.Time{}, false
}

// log is what the server logged, for failure messages.
func (s *dhcpServer) log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "log"))
	return string(b)
}

// dhcpDaemons returns the pids of the dhcp daemons plexusd runs on node
// (found by their command line and the node's cgroup).
func dhcpDaemons(t *testing.T, node string) []string {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var pids []string
	for _, f := range procs {
		cmdline, err := os.ReadFile(f)
		args := strings.Split(string(cmdline), "\x00")
		if err != nil || len(args) < 2 || filepath.Base(args[0]) != "dhcp" || args[1] != "daemon" {
			continue
		}
		dir := filepath.Dir(f)
		if cg, err := os.ReadFile(filepath.Join(dir, "cgroup")); err == nil && strings.Contains(string(cg), "/plexus-cl-"+node+"/") {
			pids = append(pids, filepath.Base(dir))
		}
	}
	return pids
}

// dhcpNetworkDefinition is S3's SimpleMacvlan with DHCP IPAM.
func dhcpNetworkDefinition(ns string) string {
	return fmt.Sprintf(`apiVersion: plexus.dev/v1alpha1
kind: NetworkDefinition
metadata: {name: %[1]s-dhcp}
spec:
  type: SimpleMacvlan
  name: dhcp-network
  namespace: %[1]s
  simpleMacvlanConfig:
    master: %[2]s
    mode: Bridge
    ipamConfig:
      type: DHCP
`, ns, nodeUplink)
}

// S3's SimpleMacvlan with DHCP on real pods against a real DHCP server:
// plexusd runs the dhcp plugin's daemon on every node once a definition
// uses DHCP; the pod gets a leased address on net1 and the lease is
// renewed; the daemon killed mid-lease is restarted and the pod keeps its
// address, renewed again; deleting the pod releases the lease on the
// server; the daemons stop when nothing uses DHCP any more, on a node
// whose pods still hold leases only after those are gone.
func TestDHCPNetwork(t *testing.T) {
	env := cluster(t)
	ns := env.Namespace(t, "dhcp")
	srv := startDHCPServer(t)
	nodes := []string{"node-1", "node-2"}
	for _, n := range nodes {
		if pids := dhcpDaemons(t, n); len(pids) != 0 {
			t.Fatalf("a dhcp daemon runs on %s before anything uses DHCP: %v", n, pids)
		}
	}

	env.ApplyYAML(t, ns, dhcpNetworkDefinition(ns))
	for _, n := range nodes {
		waitDHCPDaemons(t, n, 1)
	}

	env.ApplyYAML(t, ns, podOnNode("dhcp-client", "node-1", "dhcp-network"))
	p := runningPod(t, env, ns, "dhcp-client")
	addr := addressOf(t, &p, "net1")
	if !inRange(addr, dhcpRangeFirst, dhcpRangeLast) {
		t.Fatalf("net1 = %s, want an address the server leases (%s-%s)", addr, dhcpRangeFirst, dhcpRangeLast)
	}
	onNet1 := func() string {
		out, err := env.Exec(t.Context(), ns, p.Name, "ip", "-o", "-4", "addr", "show", "net1")
		if err != nil {
			t.Fatalf("ip addr in the pod: %v %s", err, out)
		}
		return out
	}
	if out := onNet1(); !strings.Contains(out, addr+"/26") {
		t.Fatalf("`ip addr show net1` = %q, want %s/26", out, addr)
	}
	if out, err := env.Exec(t.Context(), ns, p.Name, "ping", "-c", "1", "-W", "3", "-I", "net1", dhcpServerAddr); err != nil {
		t.Fatalf("the pod cannot reach the DHCP server over net1: %v\n%s", err, out)
	}
	first, ok := srv.lease(t, addr)
	if !ok {
		t.Fatalf("the server has no lease of %s:\n%s", addr, srv.log())
	}

	// Renewed at half the lease time, by the daemon.
	renewLimit := dhcpLeaseTime + 30*time.Second
	poll.Until(t, renewLimit, "the lease of "+addr+" is renewed", func() (bool, string) {
		exp, ok := srv.lease(t, addr)
		return ok && exp.After(first), fmt.Sprintf("expires %v (first %v)", exp, first)
	})

	// The daemon dies mid-lease: plexusd restarts it and has it take the
	// pod's lease again, so that it is renewed and released as before.
	killed := killDHCPDaemon(t, "node-1")
	poll.Until(t, renewLimit, "the restarted daemon renews the lease of "+addr, func() (bool, string) {
		exp, ok := srv.lease(t, addr)
		return ok && exp.After(killed.Add(dhcpLeaseTime)), fmt.Sprintf("expires %v (killed %v)", exp, killed)
	})
	if out := onNet1(); !strings.Contains(out, addr+"/26") {
		t.Fatalf("after the daemon's restart net1 = %q, want %s/26 kept", out, addr)
	}

	// The definition goes: node-2 has no lease and stops its daemon;
	// node-1's pod still holds one, which its daemon keeps renewing.
	gvr := v1.SchemeGroupVersion.WithResource(v1.ResourceNetworkDefinitions)
	if err := env.Dynamic.Resource(gvr).Delete(t.Context(), ns+"-dhcp", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting the NetworkDefinition: %v", err)
	}
	waitDHCPDaemons(t, "node-2", 0)
	if pids := dhcpDaemons(t, "node-1"); len(pids) != 1 {
		t.Fatalf("node-1's pod holds a lease and its daemons are %v, want one", pids)
	}

	// Released, not expired: the server gets the DHCPRELEASE (from the
	// leased address: a release from 0.0.0.0 is dropped, and the lease
	// would only vanish at its expiry, a minute or more later).
	env.Kubectl(t, "-n", ns, "delete", "pod", p.Name, "--wait=true")
	poll.Until(t, 30*time.Second, "deleting the pod releases its lease on the server", func() (bool, string) {
		_, ok := srv.lease(t, addr)
		released := strings.Contains(srv.log(), "DHCPRELEASE(eth0) "+addr)
		return !ok && released, fmt.Sprintf("lease of %s there: %v; DHCPRELEASE logged: %v", addr, ok, released)
	})
	waitDHCPDaemons(t, "node-1", 0)
}

// waitDHCPDaemons waits until node runs n dhcp daemons (0 or 1).
func waitDHCPDaemons(t *testing.T, node string, n int) {
	t.Helper()
	what := "plexusd runs the dhcp daemon on " + node
	if n == 0 {
		what = node + " stops its dhcp daemon"
	}
	poll.Until(t, podLimit, what, func() (bool, string) {
		pids := dhcpDaemons(t, node)
		return len(pids) == n, fmt.Sprint(pids)
	})
}

// killDHCPDaemon SIGKILLs node's dhcp daemon, waits until plexusd has
// started another, and returns when it was killed.
func killDHCPDaemon(t *testing.T, node string) time.Time {
	t.Helper()
	old := dhcpDaemons(t, node)
	if len(old) != 1 {
		t.Fatalf("dhcp daemons on %s: %v, want one", node, old)
	}
	pid, _ := strconv.Atoi(old[0])
	killed := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("killing the dhcp daemon on %s: %v", node, err)
	}
	poll.Until(t, podLimit, "plexusd restarts the dhcp daemon on "+node, func() (bool, string) {
		pids := dhcpDaemons(t, node)
		return len(pids) == 1 && pids[0] != old[0], fmt.Sprint(pids)
	})
	return killed
}

// inRange reports whether addr lies in first..last.
func inRange(addr, first, last string) bool {
	a, err := netip.ParseAddr(addr)
	return err == nil && a.Compare(netip.MustParseAddr(first)) >= 0 && a.Compare(netip.MustParseAddr(last)) <= 0
}
