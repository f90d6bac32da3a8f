package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	corev1 "k8s.io/api/core/v1"

	"github.com/plexus-cni/plexus/internal/cnierr"
	"github.com/plexus-cni/plexus/internal/config"
	"github.com/plexus-cni/plexus/internal/devices"
	"github.com/plexus-cni/plexus/pkg/netselect"
)

const testnic = "plexus.dev/testnic"

// fakeDevices answers a device lookup from memory and counts the lookups.
type fakeDevices struct {
	devs  map[string][]string
	err   error
	asked int
}

func (d *fakeDevices) Devices(context.Context, *corev1.Pod) (map[string][]string, error) {
	d.asked++
	return d.devs, d.err
}

// newDeviceFixture is the plugin fixture with NAD ns/vf backed by testnic
// devices (its plugins declare deviceID and CNIDeviceInfoFile).
func newDeviceFixture(t *testing.T, networks string, devs *fakeDevices) *fixture {
	f := newFixture(t, map[string]string{netselect.NetworksAnnotation: networks})
	f.api.nads["ns/vf"] = `{"cniVersion":"1.0.0","plugins":[
		{"type":"sriov","capabilities":{"deviceID":true,"CNIDeviceInfoFile":true}},{"type":"tuning"}]}`
	f.api.resources = map[string]string{"ns/vf": testnic}
	f.p.Devices = func(*config.NetConf, API) DeviceFinder { return devs }
	return f
}

// delegateConf decodes the configuration a delegate received.
func delegateConf(t *testing.T, f *fixture, key string) map[string]any {
	t.Helper()
	var conf map[string]any
	if err := json.Unmarshal(f.exec.stdin[key], &conf); err != nil {
		t.Fatalf("stdin of %q: %v (%s)", key, err, f.exec.stdin[key])
	}
	return conf
}

func writeDPInfo(t *testing.T, f *fixture, id, content string) {
	t.Helper()
	p := filepath.Join(f.devInfoDir(), "dp", "plexus.dev-testnic-"+id+"-device.json")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDevicesGoToEachAttachmentInOrder(t *testing.T) {
	devs := &fakeDevices{devs: map[string][]string{testnic: {"0000:03:00.1", "0000:03:00.2"}}}
	f := newDeviceFixture(t, "vf,a,vf", devs)
	info := `{"type":"pci","version":"1.1.0","pci":{"pci-address":"0000:03:00.2"}}`
	writeDPInfo(t, f, "0000:03:00.2", info)
	if err := f.add("uid-1"); err != nil {
		t.Fatal(err)
	}
	if devs.asked != 1 {
		t.Fatalf("kubelet asked %d times, want once per pod", devs.asked)
	}
	for key, id := range map[string]string{"ADD net1 vf": "0000:03:00.1", "ADD net3 vf": "0000:03:00.2"} {
		conf := delegateConf(t, f, key)
		rc, _ := conf["runtimeConfig"].(map[string]any)
		if conf["deviceID"] != id || conf["pciBusID"] != id || rc["deviceID"] != id {
			t.Errorf("%s: deviceID %v, pciBusID %v, runtimeConfig %v; want %s in all three", key, conf["deviceID"], conf["pciBusID"], rc, id)
		}
		if file, _ := rc["CNIDeviceInfoFile"].(string); !strings.HasPrefix(file, filepath.Join(f.devInfoDir(), "cni", "vf-c0ffee_")) {
			t.Errorf("%s: CNIDeviceInfoFile = %q", key, file)
		}
	}
	if conf := delegateConf(t, f, "ADD net2 a"); conf["deviceID"] != nil {
		t.Errorf("network a has no resourceName but got deviceID %v", conf["deviceID"])
	}
	// net3's device had a device-plugin file: copied, and in network-status.
	cniFile := filepath.Join(f.devInfoDir(), "cni", "vf-c0ffee_net3")
	if b, err := os.ReadFile(cniFile); err != nil || string(b) != info {
		t.Fatalf("%s = %q (%v), want the device plugin's file", cniFile, b, err)
	}
	var st []struct {
		Interface  string          `json:"interface"`
		DeviceInfo json.RawMessage `json:"device-info"`
	}
	if err := json.Unmarshal([]byte(f.api.status), &st); err != nil || len(st) != 4 {
		t.Fatalf("network-status = %s (%v)", f.api.status, err)
	}
	if st[3].Interface != "net3" || !jsonEqual(st[3].DeviceInfo, info) || st[1].DeviceInfo != nil {
		t.Fatalf("network-status = %s", f.api.status)
	}
	// DEL needs no kubelet (the record has the devices) and removes the file.
	devs.err = errors.New("kubelet gone")
	if err := f.del(); err != nil {
		t.Fatal(err)
	}
	if conf := delegateConf(t, f, "DEL net3 vf"); conf["deviceID"] != "0000:03:00.2" {
		t.Errorf("DEL of net3 got deviceID %v", conf["deviceID"])
	}
	if _, err := os.Stat(cniFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("device-info file left after DEL: %v", err)
	}
}

func TestDeviceShortageNamesResourceCountsAndPod(t *testing.T) {
	for name, devs := range map[string]map[string][]string{
		"not requested":   nil,
		"fewer than nets": {testnic: {"0000:03:00.1"}},
	} {
		t.Run(name, func(t *testing.T) {
			f := newDeviceFixture(t, "vf,vf", &fakeDevices{devs: devs})
			err := f.add("uid-1")
			if cnierr.Code(err) != cnierr.InvalidNetConfig {
				t.Fatalf("code %d, want 7: %v", cnierr.Code(err), err)
			}
			for _, want := range []string{testnic, "ns/pod", "2 attachments", "has " + string(rune('0'+len(devs[testnic])))} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q: %v", want, err)
				}
			}
			if len(f.exec.seen()) != 0 {
				t.Fatalf("delegates ran: %v", f.exec.seen())
			}
		})
	}
}

func TestDeviceLookupFailureIsRetryable(t *testing.T) {
	devs := &fakeDevices{err: &devices.UnavailableError{Socket: "/x.sock", Err: errors.New("connection refused")}}
	f := newDeviceFixture(t, "vf", devs)
	err := f.add("uid-1")
	var e *types.Error
	if cnierr.Code(err) != cnierr.TryAgainLater || errors.As(err, &e) {
		t.Fatalf("code %d: %v", cnierr.Code(err), err)
	}
	if !strings.Contains(err.Error(), "/x.sock") {
		t.Fatalf("error does not name the socket: %v", err)
	}
}

func TestFailedDeviceAddRemovesDeviceInfo(t *testing.T) {
	devs := &fakeDevices{devs: map[string][]string{testnic: {"0000:03:00.1"}}}
	f := newDeviceFixture(t, "vf", devs)
	writeDPInfo(t, f, "0000:03:00.1", `{"type":"pci","version":"1.1.0","pci":{"pci-address":"0000:03:00.1"}}`)
	f.exec.fail = map[string]string{"ADD net1 vf": "VF busy"}
	if err := f.add("uid-1"); err == nil {
		t.Fatal("ADD succeeded")
	}
	entries, _ := os.ReadDir(filepath.Join(f.devInfoDir(), "cni"))
	if len(entries) != 0 {
		t.Fatalf("device-info files left after a rolled-back ADD: %v", entries)
	}
	if _, err := os.Stat(f.recordPath()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("record left: %v", err)
	}
}

func TestSelectionDeviceIDPicksThatDevice(t *testing.T) {
	devs := &fakeDevices{devs: map[string][]string{testnic: {"0000:03:00.1", "0000:03:00.2"}}}
	f := newDeviceFixture(t, `[{"name":"vf","deviceID":"0000:03:00.2"},{"name":"vf"}]`, devs)
	if err := f.add("uid-1"); err != nil {
		t.Fatal(err)
	}
	if got := delegateConf(t, f, "ADD net1 vf")["deviceID"]; got != "0000:03:00.2" {
		t.Fatalf("net1 got %v, want the selected device", got)
	}
	if got := delegateConf(t, f, "ADD net2 vf")["deviceID"]; got != "0000:03:00.1" {
		t.Fatalf("net2 got %v, want the remaining device", got)
	}
	f2 := newDeviceFixture(t, `[{"name":"vf","deviceID":"0000:09:00.0"}]`, devs)
	if err := f2.add("uid-1"); cnierr.Code(err) != cnierr.InvalidNetConfig || !strings.Contains(err.Error(), "0000:09:00.0") {
		t.Fatalf("a device the pod does not have: code %d, %v", cnierr.Code(err), err)
	}
}

func jsonEqual(a json.RawMessage, b string) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal([]byte(b), &y) == nil && reflect.DeepEqual(x, y)
}
