package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"

	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/internal/testbed/nodesim"
	"github.com/plexus-cni/plexus/internal/testbed/poll"
	"github.com/plexus-cni/plexus/test/devices/devtest"
	"github.com/plexus-cni/plexus/test/devices/testnic"
)

// waitLimit bounds every wait for the plugin; it is a safety net, not a
// timing assertion.
const waitLimit = 30 * time.Second

// fakeKubelet serves kubelet's v1beta1 Registration service on
// <dir>/kubelet.sock and records each registration.
type fakeKubelet struct {
	pluginapi.UnimplementedRegistrationServer
	t    *testing.T
	dir  string
	regs chan *pluginapi.RegisterRequest
	// refuse is how many registrations to refuse before accepting.
	refuse atomic.Int32

	mu  sync.Mutex // guards srv
	srv *grpc.Server
}

func startKubelet(t *testing.T, dir string, refuse int32) *fakeKubelet {
	k := &fakeKubelet{t: t, dir: dir, regs: make(chan *pluginapi.RegisterRequest, 10)}
	k.refuse.Store(refuse)
	k.start()
	t.Cleanup(k.stop)
	return k
}

func (k *fakeKubelet) start() {
	k.t.Helper()
	lis, err := net.Listen("unix", filepath.Join(k.dir, "kubelet.sock"))
	if err != nil {
		k.t.Fatal(err)
	}
	srv := grpc.NewServer()
	pluginapi.RegisterRegistrationServer(srv, k)
	go func() { _ = srv.Serve(lis) }()
	k.mu.Lock()
	k.srv = srv
	k.mu.Unlock()
}

// stop ends the server; closing the listener removes kubelet.sock.
func (k *fakeKubelet) stop() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.srv.Stop()
}

// Register refuses the request while k.refuse is positive, as a kubelet
// still starting might, and records it otherwise.
func (k *fakeKubelet) Register(_ context.Context, req *pluginapi.RegisterRequest) (*pluginapi.Empty, error) {
	if k.refuse.Add(-1) >= 0 {
		return nil, status.Error(codes.Unavailable, "not ready")
	}
	k.regs <- req
	return &pluginapi.Empty{}, nil
}

// awaitRegistration returns the next registration.
func (k *fakeKubelet) awaitRegistration() *pluginapi.RegisterRequest {
	k.t.Helper()
	select {
	case req := <-k.regs:
		return req
	case <-time.After(waitLimit):
		k.t.Fatalf("no registration within %v", waitLimit)
		return nil
	}
}

// restart stops the server and starts it again; like a real kubelet
// restart, removeSockets also removes the other sockets in the directory.
func (k *fakeKubelet) restart(removeSockets bool) {
	k.t.Helper()
	k.stop()
	if removeSockets {
		socks, _ := filepath.Glob(filepath.Join(k.dir, "*.sock"))
		for _, s := range socks {
			if err := os.Remove(s); err != nil {
				k.t.Fatal(err)
			}
		}
	}
	k.start()
}

// watcher reads the plugin's ListAndWatch stream as kubelet does.
type watcher struct {
	t    *testing.T
	conn *grpc.ClientConn
	devs chan []*pluginapi.Device
}

func watch(t *testing.T, socket string) *watcher {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); conn.Close() })
	stream, err := pluginapi.NewDevicePluginClient(conn).ListAndWatch(ctx, &pluginapi.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	w := &watcher{t: t, conn: conn, devs: make(chan []*pluginapi.Device, 100)}
	go func() {
		defer close(w.devs)
		for {
			resp, err := stream.Recv()
			if err != nil {
				return
			}
			w.devs <- resp.Devices
		}
	}()
	return w
}

// await reads lists until one is want ("id=Health ..." in -devices order).
func (w *watcher) await(want string) {
	w.t.Helper()
	timeout := time.After(waitLimit)
	last := "nothing"
	for {
		select {
		case devs, ok := <-w.devs:
			if !ok {
				w.t.Fatalf("ListAndWatch ended waiting for %q (last: %s)", want, last)
			}
			if last = healthOf(devs); last == want {
				return
			}
		case <-timeout:
			w.t.Fatalf("ListAndWatch did not send %q within %v (last: %s)", want, waitLimit, last)
		}
	}
}

func healthOf(devs []*pluginapi.Device) string {
	var parts []string
	for _, d := range devs {
		parts = append(parts, d.ID+"="+d.Health)
	}
	return strings.Join(parts, " ")
}

// syncBuffer collects the plugin's log.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// devicePlugin is a running testnic-dp.
type devicePlugin struct {
	cmd       *exec.Cmd
	log       *syncBuffer
	exited    chan error
	pluginDir string
	infoDir   string
}

// startPlugin runs testnic-dp inside the node's namespace.
func startPlugin(t *testing.T, n *nodesim.Node, devices string) *devicePlugin {
	t.Helper()
	dp, _ := devtest.Build(t, t.TempDir())
	p := &devicePlugin{log: &syncBuffer{}, exited: make(chan error, 1),
		pluginDir: t.TempDir(), infoDir: filepath.Join(t.TempDir(), "devinfo", "dp")}
	p.cmd = exec.Command("nsenter", "--net="+n.NetNSPath, "--", dp, "-devices", devices,
		"-plugin-dir", p.pluginDir, "-devinfo-dir", p.infoDir, "-interval", "100ms")
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill() // fails harmlessly once it exited
		if t.Failed() {
			t.Logf("testnic-dp log:\n%s", p.log.String())
		}
	})
	return p
}

// stop sends SIGTERM and waits for the plugin to exit.
func (p *devicePlugin) stop(t *testing.T) error {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		return err
	case <-time.After(waitLimit):
		t.Fatalf("testnic-dp did not exit within %v of SIGTERM", waitLimit)
		return nil
	}
}

func nodeExec(t *testing.T, n *nodesim.Node, args ...string) {
	t.Helper()
	if _, err := n.Exec(args...); err != nil {
		t.Fatal(err)
	}
}

// TestDevicePlugin runs testnic-dp against a fake kubelet: it waits for
// kubelet, registers (retrying a refusal), reports device health as interfaces come and go,
// writes device-info files, registers again after kubelet restarts, and
// cleans up on SIGTERM.
func TestDevicePlugin(t *testing.T) {
	testbed.RequireRoot(t)
	n := nodesim.NewNode(t, nodesim.NewSwitch(t), "", nodesim.NodeOptions{})
	nodeExec(t, n, "ip", "link", "add", "tna0", "type", "veth", "peer", "name", "tna1")
	nodeExec(t, n, "ip", "link", "add", "tnb0", "type", "veth", "peer", "name", "tnb1")
	dp := startPlugin(t, n, "tna0,tnb0,tnc0")
	endpoint := filepath.Join(dp.pluginDir, testnic.SocketName(testnic.Resource))
	poll.Until(t, waitLimit, "testnic-dp serves", poll.True(func() bool {
		_, err := os.Stat(endpoint)
		return err == nil
	}))
	kubelet := startKubelet(t, dp.pluginDir, 2) // only now, and refusing twice: the plugin retries
	assertRegistration(t, kubelet.awaitRegistration())
	w := watch(t, endpoint)
	w.await("tna0=Healthy tnb0=Healthy tnc0=Unhealthy")
	assertDeviceInfo(t, dp.infoDir, map[string]string{"tna0": "0000:ff:00.0", "tnb0": "0000:ff:00.1", "tnc0": "0000:ff:00.2"})

	nodeExec(t, n, "ip", "link", "del", "tnb0")
	w.await("tna0=Healthy tnb0=Unhealthy tnc0=Unhealthy")
	nodeExec(t, n, "ip", "link", "add", "tnc0", "type", "veth", "peer", "name", "tnc1")
	w.await("tna0=Healthy tnb0=Unhealthy tnc0=Healthy")
	assertAllocate(t, w.conn)

	for _, removeSockets := range []bool{true, false} {
		kubelet.restart(removeSockets)
		assertRegistration(t, kubelet.awaitRegistration())
		watch(t, endpoint).await("tna0=Healthy tnb0=Unhealthy tnc0=Healthy")
	}

	if err := dp.stop(t); err != nil {
		t.Fatalf("testnic-dp exited with %v after SIGTERM", err)
	}
	if left, err := os.ReadDir(dp.infoDir); err != nil || len(left) != 0 {
		t.Errorf("device-info dir after SIGTERM: %v (%v), want empty", left, err)
	}
	if _, err := os.Stat(endpoint); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("plugin socket after SIGTERM: %v, want it removed", err)
	}
}

func assertRegistration(t *testing.T, req *pluginapi.RegisterRequest) {
	t.Helper()
	want := "v1beta1 plexus.dev-testnic.sock plexus.dev/testnic"
	if got := req.Version + " " + req.Endpoint + " " + req.ResourceName; got != want {
		t.Fatalf("registration = %q, want %q", got, want)
	}
}

// assertDeviceInfo checks that dir holds exactly one device-info file per
// device, with its fake PCI address.
func assertDeviceInfo(t *testing.T, dir string, addrs map[string]string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	var want []string
	for id, addr := range addrs {
		name := testnic.DeviceInfoFileName(testnic.Resource, id)
		want = append(want, name)
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		var info struct {
			Type, Version string
			PCI           map[string]string `json:"pci"`
		}
		if err := json.Unmarshal(data, &info); err != nil || info.Type != "pci" || info.Version != "1.1.0" ||
			!maps.Equal(info.PCI, map[string]string{"pci-address": addr}) {
			t.Errorf("%s = %s (%v), want type pci, version 1.1.0, pci-address %s", name, data, err, addr)
		}
	}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("device-info files = %v, want %v", names, want)
	}
}

// assertAllocate calls Allocate as kubelet does when a pod gets a device.
func assertAllocate(t *testing.T, conn *grpc.ClientConn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	resp, err := pluginapi.NewDevicePluginClient(conn).Allocate(ctx, &pluginapi.AllocateRequest{
		ContainerRequests: []*pluginapi.ContainerAllocateRequest{{DevicesIds: []string{"tna0"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.ContainerResponses) != 1 || resp.ContainerResponses[0].Envs[testnic.AllocEnv] != "tna0" {
		t.Fatalf("Allocate = %v, want %s=tna0", resp, testnic.AllocEnv)
	}
}
