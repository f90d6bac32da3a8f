package main_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/internal/testbed/nodesim"
	"github.com/plexus-cni/plexus/test/devices/devtest"
	"github.com/plexus-cni/plexus/test/devices/testnic"
)

// device is the node interface the tests hand out; its veth peer stays on
// the node.
const device = "tn0a"

var (
	buildOnce sync.Once
	binDir    string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "testnic-cni-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// newNode builds the plugin (once) and makes a node whose namespace holds
// the veth pair device/tn0b. Plugins run inside the node namespace, which
// is their host namespace.
func newNode(t *testing.T) *nodesim.Node {
	t.Helper()
	testbed.RequireRoot(t)
	buildOnce.Do(func() { devtest.Build(t, binDir) })
	if _, err := os.Stat(filepath.Join(binDir, devtest.CNIName)); err != nil {
		t.Fatalf("testnic-cni was not built: %v", err)
	}
	n := nodesim.NewNode(t, nodesim.NewSwitch(t), "", nodesim.NodeOptions{
		BinDirs: []string{binDir, testbed.CNIBinDir()},
	})
	if _, err := n.Exec("ip", "link", "add", device, "type", "veth", "peer", "name", "tn0b"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Exec("ip", "link", "set", device, "up"); err != nil {
		t.Fatal(err)
	}
	return n
}

// pluginConf is the testnic-cni plugin object of a list: extra keys are
// added to it (nil values remove keys).
func pluginConf(extra map[string]any) map[string]any {
	conf := map[string]any{
		"type": devtest.CNIName, "deviceID": device, "pciBusID": device,
		"capabilities": map[string]bool{"deviceID": true, "CNIDeviceInfoFile": true},
	}
	for k, v := range extra {
		if v == nil {
			delete(conf, k)
			continue
		}
		conf[k] = v
	}
	return conf
}

// writeList writes the node's network configuration: one testnic-cni plugin.
func writeList(t *testing.T, n *nodesim.Node, version string, plugin map[string]any) *libcni.NetworkConfigList {
	t.Helper()
	b, err := json.Marshal(map[string]any{"cniVersion": version, "name": "testnic", "plugins": []any{plugin}})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.WriteConfFile("10-testnic.conflist", string(b)); err != nil {
		t.Fatal(err)
	}
	list, err := libcni.ConfListFromBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// writeDeviceInfo writes a device-info file as a meta-plugin would (mode
// 0444, like the reference client library) and returns its path.
func writeDeviceInfo(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "testnic-net1-device.json")
	content := `{"type":"pci","version":"1.1.0","pci":{"pci-address":"0000:ff:00.0"}}`
	if err := os.WriteFile(path, []byte(content), 0o444); err != nil {
		t.Fatal(err)
	}
	return path
}

func runPod(t *testing.T, n *nodesim.Node, caps map[string]any) (*nodesim.Pod, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return n.RunPod(ctx, t, nodesim.PodSpec{IfName: "net1", CapabilityArgs: caps})
}

// nodeHas reports whether the node namespace has the interface.
func nodeHas(t *testing.T, n *nodesim.Node, ifname string) bool {
	t.Helper()
	out, err := n.Exec("ip", "-o", "link", "show")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) > 1 && strings.TrimSuffix(strings.SplitN(f[1], "@", 2)[0], ":") == ifname {
			return true
		}
	}
	return false
}

func podHas(t *testing.T, p *nodesim.Pod, ifname string) bool {
	t.Helper()
	links, err := p.Links()
	if err != nil {
		t.Fatal(err)
	}
	return slices.Contains(links, ifname)
}

func nodeMAC(t *testing.T, n *nodesim.Node, ifname string) string {
	t.Helper()
	out, err := n.Exec("cat", "/sys/class/net/"+ifname+"/address")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// TestAddMovesDeviceAndDelReturnsIt runs ADD, CHECK and DEL through libcni
// for every supported CNI version.
func TestAddMovesDeviceAndDelReturnsIt(t *testing.T) {
	for _, version := range []string{"0.3.1", "0.4.0", "1.0.0", "1.1.0"} {
		t.Run(version, func(t *testing.T) {
			n := newNode(t)
			mac := nodeMAC(t, n, device)
			writeList(t, n, version, pluginConf(nil))
			info := writeDeviceInfo(t)
			p, err := runPod(t, n, map[string]any{"deviceID": device, "CNIDeviceInfoFile": info})
			if err != nil {
				t.Fatal(err)
			}
			assertMoved(t, n, p, mac)
			assertAnnotated(t, info)
			if version != "0.3.1" {
				if err := p.Check(context.Background()); err != nil {
					t.Fatalf("CHECK after ADD: %v", err)
				}
			}
			for i := range 2 { // DEL is idempotent
				if err := p.Del(context.Background()); err != nil {
					t.Fatalf("DEL #%d: %v", i+1, err)
				}
				if podHas(t, p, "net1") || !nodeHas(t, n, device) || nodeMAC(t, n, device) != mac {
					t.Fatalf("after DEL #%d: pod still has net1 or node lacks %s with MAC %s", i+1, device, mac)
				}
			}
		})
	}
}

// assertMoved checks that the device is in the pod as net1 and the result
// says so.
func assertMoved(t *testing.T, n *nodesim.Node, p *nodesim.Pod, mac string) {
	t.Helper()
	if nodeHas(t, n, device) {
		t.Errorf("node still has %s after ADD", device)
	}
	if got, err := p.MAC("net1"); err != nil || got != mac {
		t.Errorf("pod net1 MAC = %q (%v), want the device's %q", got, err, mac)
	}
	res, err := current.NewResultFromResult(p.Result)
	if err != nil {
		t.Fatal(err)
	}
	want := current.Interface{Name: "net1", Mac: mac, Sandbox: p.NetNSPath}
	if len(res.Interfaces) != 1 || *res.Interfaces[0] != want {
		t.Errorf("result interfaces = %v, want [%v]", res.Interfaces, want)
	}
}

// assertAnnotated checks that ADD added the ifname key to the device-info
// file and kept the rest.
func assertAnnotated(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("device-info file %s: %v", data, err)
	}
	if got[testnic.IfnameKey] != "net1" || got["type"] != "pci" || got["pci"] == nil {
		t.Errorf("device-info file = %s, want the original keys and %q: \"net1\"", data, testnic.IfnameKey)
	}
}

// TestAddRequiresInjectedKeys proves the plugin catches each missing or
// wrong injection, naming the key and its value, and leaves the device on
// the node.
func TestAddRequiresInjectedKeys(t *testing.T) {
	n := newNode(t)
	for _, tc := range []struct {
		name  string
		extra map[string]any
		caps  map[string]any
		want  string
	}{
		{"no deviceID", map[string]any{"deviceID": nil}, map[string]any{"deviceID": device},
			`config key "deviceID" is empty ("")`},
		{"no pciBusID", map[string]any{"pciBusID": nil}, map[string]any{"deviceID": device},
			`config key "pciBusID" is "", want the deviceID "tn0a"`},
		{"pciBusID is a PCI address", map[string]any{"pciBusID": "0000:ff:00.0"}, map[string]any{"deviceID": device},
			`config key "pciBusID" is "0000:ff:00.0", want the deviceID "tn0a"`},
		{"no deviceID capability argument", nil, nil,
			`config key "runtimeConfig.deviceID" is "", want the deviceID "tn0a"`},
		{"capability not declared", map[string]any{"capabilities": map[string]bool{"CNIDeviceInfoFile": true}},
			map[string]any{"deviceID": device}, `config key "runtimeConfig.deviceID" is "", want the deviceID "tn0a"`},
		{"other device in capability argument", nil, map[string]any{"deviceID": "tn1a"},
			`config key "runtimeConfig.deviceID" is "tn1a", want the deviceID "tn0a"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeList(t, n, "1.0.0", pluginConf(tc.extra))
			p, err := runPod(t, n, tc.caps)
			var cniErr *types.Error
			if !errors.As(err, &cniErr) || cniErr.Code != types.ErrInvalidNetworkConfig || cniErr.Msg != tc.want {
				t.Fatalf("ADD = %v, want CNI error 7 %q", err, tc.want)
			}
			if !nodeHas(t, n, device) || podHas(t, p, "net1") {
				t.Errorf("after the failed ADD the device moved")
			}
		})
	}
}

// TestAddWithIPAM runs host-local as the IPAM delegate: the address is on
// the interface in the pod, and DEL releases it.
func TestAddWithIPAM(t *testing.T) {
	cniDir := testbed.RequireCNIPlugins(t, "host-local")
	n := newNode(t)
	dataDir := filepath.Join(n.StateDir, "host-local")
	writeList(t, n, "1.0.0", pluginConf(map[string]any{"ipam": map[string]any{
		"type": "host-local", "dataDir": dataDir,
		"ranges": [][]map[string]string{{{"subnet": "198.51.100.0/24", "rangeStart": "198.51.100.10", "rangeEnd": "198.51.100.20"}}},
	}}))
	p, err := runPod(t, n, map[string]any{"deviceID": device})
	if err != nil {
		t.Fatalf("ADD (host-local from %s): %v", cniDir, err)
	}
	addrs, err := p.Addrs("net1")
	if err != nil || len(addrs) != 1 || addrs[0].String() != "198.51.100.10/24" {
		t.Fatalf("pod net1 addresses = %v (%v), want [198.51.100.10/24]", addrs, err)
	}
	res, err := current.NewResultFromResult(p.Result)
	if err != nil || len(res.IPs) != 1 || res.IPs[0].Address.String() != "198.51.100.10/24" || *res.IPs[0].Interface != 0 {
		t.Fatalf("result IPs = %v (%v), want 198.51.100.10/24 on interface 0", res.IPs, err)
	}
	if leases := testbed.HostLocalLeases(t, filepath.Join(dataDir, "testnic")); !slices.Equal(leases, []string{"198.51.100.10"}) {
		t.Fatalf("host-local leases after ADD = %v", leases)
	}
	if err := p.Del(context.Background()); err != nil {
		t.Fatal(err)
	}
	if leases := testbed.HostLocalLeases(t, filepath.Join(dataDir, "testnic")); len(leases) != 0 {
		t.Errorf("host-local leases after DEL = %v, want none", leases)
	}
	if !nodeHas(t, n, device) {
		t.Errorf("node lacks %s after DEL", device)
	}
}

// TestFailedAddUndoesTheMove asks for an ifname the pod already has: ADD
// fails and the device is back on the node, and the runtime's DEL after it
// leaves the pod's own interface alone.
func TestFailedAddUndoesTheMove(t *testing.T) {
	n := newNode(t)
	mac := nodeMAC(t, n, device)
	writeList(t, n, "1.0.0", pluginConf(nil))
	ctx := context.Background()
	p, err := n.RunPod(ctx, t, nodesim.PodSpec{IfName: "lo", CapabilityArgs: map[string]any{"deviceID": device}})
	if err == nil || !strings.Contains(err.Error(), `rename "tn0a" to "lo"`) {
		t.Fatalf("ADD as lo = %v, want a rename failure", err)
	}
	if !nodeHas(t, n, device) || nodeMAC(t, n, device) != mac {
		t.Fatalf("after the failed ADD the node lacks %s (MAC %s)", device, mac)
	}
	if err := p.Del(ctx); err != nil {
		t.Fatalf("DEL after the failed ADD: %v", err)
	}
	if !podHas(t, p, "lo") || !nodeHas(t, n, device) {
		t.Errorf("DEL after the failed ADD moved the pod's lo or the device")
	}
}

// TestCheckAndDelMatchTheDevice proves DEL and CHECK act on the device the
// interface holds: a configuration naming another device, or none, fails
// and moves nothing; CHECK fails once the interface is gone; DEL without the
// pod's namespace succeeds.
func TestCheckAndDelMatchTheDevice(t *testing.T) {
	n := newNode(t)
	writeList(t, n, "1.0.0", pluginConf(nil))
	p, err := runPod(t, n, map[string]any{"deviceID": device})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for extra, want := range map[string]string{
		"tn9z": `config key "deviceID" is "tn9z", but interface "net1" holds device "tn0a"`,
		"":     `config key "deviceID" is empty ("")`,
	} {
		other := writeList(t, n, "1.0.0", pluginConf(map[string]any{"deviceID": extra, "pciBusID": extra}))
		err := p.Detach(ctx, other, "net1")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("DEL with deviceID %q = %v, want %q", extra, err, want)
		}
		if !podHas(t, p, "net1") {
			t.Fatalf("DEL with deviceID %q moved the device", extra)
		}
	}
	if _, err := p.Exec("ip", "link", "del", "net1"); err != nil {
		t.Fatal(err)
	}
	if err := p.Check(ctx); err == nil || !strings.Contains(err.Error(), `interface "net1" is not in`) {
		t.Errorf("CHECK without net1 = %v, want an error naming net1", err)
	}
	if _, err := n.Exec("ip", "netns", "delete", p.NetNSName); err != nil {
		t.Fatal(err)
	}
	if err := p.Del(ctx); err != nil {
		t.Errorf("DEL without the pod namespace: %v", err)
	}
}
