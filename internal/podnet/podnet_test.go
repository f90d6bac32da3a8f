package podnet

import (
	"crypto/rand"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/plexus-cni/plexus/internal/testbed"
)

// podNS is a network namespace made for one test, standing for a pod's:
// eth0 on 203.0.113.0/24 and 2001:db8:1::/64 with the default routes, net1
// on 198.51.100.0/24 and 2001:db8:2::/64, each a veth whose peer is in the
// same namespace, and a default route in table 100. Nothing of it is in
// the host's namespace; it is removed when the test ends, also on failure.
type podNS struct {
	t    *testing.T
	name string
	path string
}

func newPodNS(t *testing.T) *podNS {
	t.Helper()
	testbed.RequireRoot(t)
	n := &podNS{t: t, name: "plx-podnet-" + strings.ToLower(rand.Text()[:8])}
	n.path = filepath.Join("/run/netns", n.name)
	t.Cleanup(func() {
		if _, err := os.Stat(n.path); err != nil {
			return
		}
		if out, err := exec.Command("ip", "netns", "delete", n.name).CombinedOutput(); err != nil {
			t.Errorf("removing netns %s: %v: %s", n.name, err, out)
		}
	})
	run(t, "ip", "netns", "add", n.name)
	n.requireOwnNS()
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "eth0", "type", "veth", "peer", "name", "eth0-peer"},
		{"link", "add", "net1", "type", "veth", "peer", "name", "net1-peer"},
		{"addr", "add", "203.0.113.2/24", "dev", "eth0"},
		{"addr", "add", "2001:db8:1::2/64", "dev", "eth0", "nodad"},
		{"addr", "add", "198.51.100.2/24", "dev", "net1"},
		{"addr", "add", "2001:db8:2::2/64", "dev", "net1", "nodad"},
		{"link", "set", "eth0-peer", "up"}, {"link", "set", "eth0", "up"},
		{"link", "set", "net1-peer", "up"}, {"link", "set", "net1", "up"},
		{"route", "add", "default", "via", "203.0.113.1", "dev", "eth0"},
		{"-6", "route", "add", "default", "via", "2001:db8:1::1", "dev", "eth0"},
		{"route", "add", "default", "via", "203.0.113.1", "dev", "eth0", "table", "100"},
	} {
		n.ip(args...)
	}
	return n
}

// requireOwnNS stops the test unless the namespace at n.path is not the
// host's: the functions under test change routes wherever they run.
func (n *podNS) requireOwnNS() {
	n.t.Helper()
	var host, own unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &host); err != nil {
		n.t.Fatal(err)
	}
	if err := unix.Stat(n.path, &own); err != nil {
		n.t.Fatal(err)
	}
	if host.Ino == own.Ino && host.Dev == own.Dev {
		n.t.Fatalf("%s is the host's network namespace", n.path)
	}
}

// ip runs an iproute2 command in the namespace and returns its output.
func (n *podNS) ip(args ...string) string {
	n.t.Helper()
	return run(n.t, "ip", append([]string{"-n", n.name}, args...)...)
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// defaults lists the namespace's default routes of a family ("-4", "-6")
// in a table as "via <gateway> dev <interface>".
func (n *podNS) defaults(family, table string) []string {
	n.t.Helper()
	var routes []struct {
		Dst     string `json:"dst"`
		Gateway string `json:"gateway"`
		Dev     string `json:"dev"`
	}
	if err := json.Unmarshal([]byte(n.ip("-j", family, "route", "show", "table", table)), &routes); err != nil {
		n.t.Fatal(err)
	}
	var out []string
	for _, r := range routes {
		if r.Dst == "default" {
			out = append(out, "via "+r.Gateway+" dev "+r.Dev)
		}
	}
	return out
}

func (n *podNS) expectDefaults(what, family, table string, want ...string) {
	n.t.Helper()
	if got := n.defaults(family, table); strings.Join(got, ", ") != strings.Join(want, ", ") {
		n.t.Errorf("%s: %s default routes in table %s: %q, want %q", what, family, table, got, want)
	}
}

// SetDefaultRoute moves the default route of each gateway's family to the
// interface and leaves the other family and other tables alone; a second
// call changes nothing.
func TestSetDefaultRoute(t *testing.T) {
	n := newPodNS(t)
	for range 2 {
		if err := SetDefaultRoute(n.path, "net1", []net.IP{net.ParseIP("198.51.100.1")}); err != nil {
			t.Fatalf("SetDefaultRoute IPv4: %v", err)
		}
		n.expectDefaults("IPv4 moved", "-4", "main", "via 198.51.100.1 dev net1")
		n.expectDefaults("IPv4 moved", "-6", "main", "via 2001:db8:1::1 dev eth0")
		n.expectDefaults("IPv4 moved", "-4", "100", "via 203.0.113.1 dev eth0")
	}
	if err := SetDefaultRoute(n.path, "net1", []net.IP{net.ParseIP("2001:db8:2::1")}); err != nil {
		t.Fatalf("SetDefaultRoute IPv6: %v", err)
	}
	n.expectDefaults("IPv6 moved", "-6", "main", "via 2001:db8:2::1 dev net1")
	n.expectDefaults("IPv6 moved", "-4", "main", "via 198.51.100.1 dev net1")
	// Both families at once, back to eth0.
	if err := SetDefaultRoute(n.path, "eth0", []net.IP{net.ParseIP("203.0.113.1"), net.ParseIP("2001:db8:1::1")}); err != nil {
		t.Fatalf("SetDefaultRoute dual stack: %v", err)
	}
	n.expectDefaults("both moved back", "-4", "main", "via 203.0.113.1 dev eth0")
	n.expectDefaults("both moved back", "-6", "main", "via 2001:db8:1::1 dev eth0")
}

// A missing interface or an unreachable gateway fails, naming them, and
// leaves the default routes as they were.
func TestSetDefaultRouteErrors(t *testing.T) {
	n := newPodNS(t)
	err := SetDefaultRoute(n.path, "net9", []net.IP{net.ParseIP("198.51.100.1")})
	if err == nil || !strings.Contains(err.Error(), "net9") {
		t.Errorf("missing interface: %v, want an error naming net9", err)
	}
	n.expectDefaults("after the failure", "-4", "main", "via 203.0.113.1 dev eth0")
	err = SetDefaultRoute(n.path, "net1", []net.IP{net.ParseIP("192.0.2.1")})
	if err == nil || !strings.Contains(err.Error(), "192.0.2.1") || !strings.Contains(err.Error(), "net1") {
		t.Errorf("gateway off every subnet of net1: %v, want an error naming it and net1", err)
	}
	n.expectDefaults("after the failed move", "-4", "main", "via 203.0.113.1 dev eth0")
	n.expectDefaults("after the failed move", "-4", "100", "via 203.0.113.1 dev eth0")
	if err := SetDefaultRoute(filepath.Join(t.TempDir(), "no-netns"), "net1", nil); err == nil {
		t.Error("a netns path that does not exist: no error")
	}
}

// LinkExists accepts an interface that is up and names the one missing or
// down.
func TestLinkExists(t *testing.T) {
	n := newPodNS(t)
	if err := LinkExists(n.path, "net1"); err != nil {
		t.Errorf("net1, up: %v", err)
	}
	if err := LinkExists(n.path, "net7"); err == nil || !strings.Contains(err.Error(), "net7") || !strings.Contains(err.Error(), n.path) {
		t.Errorf("missing net7: %v, want an error naming it and the namespace", err)
	}
	n.ip("link", "set", "net1", "down")
	if err := LinkExists(n.path, "net1"); err == nil || !strings.Contains(err.Error(), "down") {
		t.Errorf("net1 down: %v, want an error saying so", err)
	}
}
