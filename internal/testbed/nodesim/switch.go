package nodesim

import (
	"fmt"
	"net/netip"
	"testing"
)

// switchBridge is the name of the bridge inside a switch namespace.
const switchBridge = "br0"

// hostIfName is the name of a Host's interface inside its own namespace.
const hostIfName = "ext0"

// Switch is a shared L2 segment: a network namespace holding a Linux bridge.
// Nodes and hosts are attached to it by veth pairs.
type Switch struct {
	// NetNSName is the name of the switch namespace (`ip netns`).
	NetNSName string
	// Bridge is the bridge device inside the switch namespace.
	Bridge string
}

// Host is a namespace on a Switch that stands for a machine outside the
// cluster, e.g. a gateway or a peer on the same VLAN.
type Host struct {
	// Name is the name the test gave the host.
	Name string
	// NetNSName and NetNSPath identify the host's namespace.
	NetNSName string
	NetNSPath string
	// IfName is the host's interface on the switch.
	IfName string
	// Addr is the address configured on IfName.
	Addr netip.Prefix
}

// NewSwitch creates a switch and registers its removal with t.Cleanup.
func NewSwitch(t testing.TB) *Switch {
	t.Helper()
	name, err := createNetNS("plx-sw-")
	if name != "" {
		t.Cleanup(func() {
			if err := deleteNetNS(name); err != nil {
				t.Errorf("remove switch: %v", err)
			}
		})
	}
	if err != nil {
		t.Fatalf("create switch: %v", err)
	}
	sw := &Switch{NetNSName: name, Bridge: switchBridge}
	if err := sw.setup(); err != nil {
		t.Fatalf("create switch: %v", err)
	}
	return sw
}

func (s *Switch) setup() error {
	if err := ip("-n", s.NetNSName, "link", "add", s.Bridge, "type", "bridge", "stp_state", "0"); err != nil {
		return err
	}
	return ip("-n", s.NetNSName, "link", "set", s.Bridge, "up")
}

// plug creates a veth pair whose switch end is a bridge port and whose other
// end, named ifName, lands in namespace peerNS (down, no address). Both ends
// are created inside namespaces; nothing touches the caller's namespace.
func (s *Switch) plug(peerNS, ifName string) error {
	if err := validLinkName(ifName); err != nil {
		return err
	}
	port := "p" + randomHex(4)
	if err := ip("-n", s.NetNSName, "link", "add", port, "type", "veth",
		"peer", "name", ifName, "netns", peerNS); err != nil {
		return fmt.Errorf("plug %s into switch: %w", peerNS, err)
	}
	if err := ip("-n", s.NetNSName, "link", "set", port, "master", s.Bridge, "up"); err != nil {
		return fmt.Errorf("attach port %s to %s: %w", port, s.Bridge, err)
	}
	return nil
}

// AddHost attaches a new host namespace to the switch with address cidr
// (e.g. "192.0.2.1/24") on its interface. Removal is registered with
// t.Cleanup.
func (s *Switch) AddHost(t testing.TB, name, cidr string) *Host {
	t.Helper()
	addr, err := netip.ParsePrefix(cidr)
	if err != nil {
		t.Fatalf("add host %s: %v", name, err)
	}
	nsName, err := createNetNS("plx-h")
	if nsName != "" {
		t.Cleanup(func() {
			if err := deleteNetNS(nsName); err != nil {
				t.Errorf("remove host %s: %v", name, err)
			}
		})
	}
	if err != nil {
		t.Fatalf("add host %s: %v", name, err)
	}
	h := &Host{Name: name, NetNSName: nsName, NetNSPath: netnsPath(nsName), IfName: hostIfName, Addr: addr}
	if err := s.plug(nsName, hostIfName); err != nil {
		t.Fatalf("add host %s: %v", name, err)
	}
	if err := ip("-n", nsName, "addr", "add", addr.String(), "dev", hostIfName); err != nil {
		t.Fatalf("add host %s: %v", name, err)
	}
	if err := ip("-n", nsName, "link", "set", hostIfName, "up"); err != nil {
		t.Fatalf("add host %s: %v", name, err)
	}
	return h
}

// Exec runs a command inside the host's namespace and returns its stdout.
func (h *Host) Exec(args ...string) (string, error) {
	return nsExecCommand(h.NetNSName, args...)
}

// Ping sends one echo request to addr and waits (bounded) for the reply.
func (h *Host) Ping(addr string) error {
	return ping(h.NetNSName, addr)
}
