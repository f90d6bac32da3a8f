package plan

import (
	"encoding/json"
	"testing"

	"github.com/plexus-cni/plexus/pkg/nad"
)

func TestAssignDevicesInjectsEveryPluginAndCopiesArgs(t *testing.T) {
	d, err := nad.Parse([]byte(`{"cniVersion":"1.0.0","name":"vf","plugins":[{"type":"sriov"},{"type":"tuning"}]}`), "vf")
	if err != nil {
		t.Fatal(err)
	}
	d.ResourceName = "example.com/vf"
	shared := map[string]any{"mac": "02:00:00:00:00:09"}
	atts := []Attachment{{StatusName: "ns/vf", IfName: "net1", Delegate: d, CapabilityArgs: shared}}
	if err := AssignDevices(atts, Devices{"example.com/vf": {"0000:03:00.4"}}, "ns/pod"); err != nil {
		t.Fatal(err)
	}
	var list struct{ Plugins []map[string]any }
	if err := json.Unmarshal(atts[0].Delegate.Conflist, &list); err != nil {
		t.Fatal(err)
	}
	for i, p := range list.Plugins {
		if p["deviceID"] != "0000:03:00.4" || p["pciBusID"] != "0000:03:00.4" {
			t.Errorf("plugins[%d] = %v, want deviceID and pciBusID", i, p)
		}
	}
	if _, touched := shared[CapDeviceID]; touched || atts[0].CapabilityArgs[CapDeviceID] != "0000:03:00.4" {
		t.Fatalf("capability args: shared %v, attachment %v", shared, atts[0].CapabilityArgs)
	}
	if d.Conflist == nil || string(d.Conflist) == string(atts[0].Delegate.Conflist) {
		t.Fatal("the resolved delegate (shared through caches) was modified")
	}
}

func TestDevicePluginInfoFile(t *testing.T) {
	got := DevicePluginInfoFile("/run/devinfo", "intel.com/sriov_netdevice", "0000:03:00.1")
	if want := "/run/devinfo/dp/intel.com-sriov_netdevice-0000:03:00.1-device.json"; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}
