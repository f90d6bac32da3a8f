package plan

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/plexus-cni/plexus/internal/cnierr"
	"github.com/plexus-cni/plexus/pkg/nad"
)

// Devices maps a resource name (a device plugin's, or the
// k8s.cni.cncf.io/resourceName attribute of DRA devices) to the IDs of the
// devices of that resource allocated to the pod, in the order they are
// handed out.
type Devices map[string][]string

// Device-info locations (Device Information spec 1.1.0, NPWG §A.9),
// relative to the device-info directory
// (/var/run/k8s.cni.cncf.io/devinfo on a node).
const (
	// DevicePluginInfoDir holds the files device plugins write,
	// <resource>-<deviceID>-device.json.
	DevicePluginInfoDir = "dp"
	// CNIInfoDir holds one file per attachment, which plexus fills from the
	// device plugin's and hands to the delegates as CNIDeviceInfoFile.
	CNIInfoDir = "cni"
)

// Capability names of device-backed attachments (runtimeConfig keys).
const (
	CapDeviceID       = "deviceID"
	CapDeviceInfoFile = "CNIDeviceInfoFile"
)

// NeedsDevices reports whether an attachment's network names a resource,
// so that the pod's devices have to be looked up.
func NeedsDevices(atts []Attachment) bool {
	return slices.ContainsFunc(atts, func(a Attachment) bool { return a.Delegate.ResourceName != "" })
}

// AssignDevices gives every attachment whose network names a resource one
// device of the pod's devs of that resource: a device the selection names
// ("deviceID") when the pod has it, else the next unused one, in attachment
// order (as Multus does). The device goes into every plugin of the
// attachment's configuration as "deviceID" and "pciBusID", and into its
// runtime arguments as the deviceID capability. A pod without enough
// devices of a resource is an error naming the resource, the counts and
// the pod (code 7: the pod must request them, see the admission webhook).
func AssignDevices(atts []Attachment, devs Devices, podRef string) error {
	need := map[string]int{}
	for _, a := range atts {
		if r := a.Delegate.ResourceName; r != "" {
			need[r]++
		}
	}
	free := map[string][]string{}
	for r := range need {
		free[r] = slices.Clone(devs[r])
	}
	for i := range atts {
		if err := assignOne(&atts[i], free, need, devs, podRef); err != nil {
			return err
		}
	}
	return nil
}

func assignOne(a *Attachment, free map[string][]string, need map[string]int, devs Devices, podRef string) error {
	r := a.Delegate.ResourceName
	if r == "" {
		return nil
	}
	id, _ := a.CapabilityArgs[CapDeviceID].(string) // the selection's own "deviceID"
	switch {
	case id != "":
		k := slices.Index(free[r], id)
		if k < 0 {
			return cnierr.New(cnierr.InvalidNetConfig,
				"%s (interface %s): the selection asks for device %q of resource %q, but pod %s has no such device left (its devices of %q: %v)",
				a.StatusName, a.IfName, id, r, podRef, r, devs[r])
		}
		free[r] = slices.Delete(free[r], k, k+1)
	case len(free[r]) == 0:
		return cnierr.New(cnierr.InvalidNetConfig,
			"%s (interface %s): network needs a device of resource %q (annotation %s): pod %s has %d of it allocated by the kubelet and %d attachments need one; request %q in the pod's resources (plexus's admission webhook adds it to pods it admits)",
			a.StatusName, a.IfName, r, nad.ResourceNameAnnotation, podRef, len(devs[r]), need[r], r)
	default:
		id, free[r] = free[r][0], free[r][1:]
	}
	d, err := a.Delegate.WithPluginKeys(map[string]any{"deviceID": id, "pciBusID": id})
	if err != nil {
		return cnierr.Wrap(cnierr.InvalidNetConfig, fmt.Errorf("%s: %w", a.StatusName, err))
	}
	a.Delegate, a.DeviceID = d, id
	a.CapabilityArgs = withArg(a.CapabilityArgs, CapDeviceID, id)
	return nil
}

// SetDeviceInfoFiles names the per-attachment device-info file of every
// attachment that has a device or whose plugins declare the
// CNIDeviceInfoFile capability, and passes it as that capability. The name
// is Multus's, <network>-<containerID>_<ifname> with "/" replaced, under
// dir/cni; dir "" turns device-info off.
func SetDeviceInfoFiles(atts []Attachment, dir, containerID string) {
	if dir == "" {
		return
	}
	for i := range atts {
		a := &atts[i]
		if a.DeviceID == "" && !a.Delegate.Capabilities[CapDeviceInfoFile] {
			continue
		}
		name := strings.ReplaceAll(a.Delegate.Name+"-"+containerID+"_"+a.IfName, "/", "-")
		a.DeviceInfoFile = filepath.Join(dir, CNIInfoDir, name)
		a.CapabilityArgs = withArg(a.CapabilityArgs, CapDeviceInfoFile, a.DeviceInfoFile)
	}
}

// DevicePluginInfoFile is where a device plugin writes the device-info of
// one of its devices: dir/dp/<resource>-<deviceID>-device.json, "/"
// replaced by "-" in both.
func DevicePluginInfoFile(dir, resource, deviceID string) string {
	name := strings.ReplaceAll(resource, "/", "-") + "-" + strings.ReplaceAll(deviceID, "/", "-") + "-device.json"
	return filepath.Join(dir, DevicePluginInfoDir, name)
}

// withArg returns a copy of args with key set: the map may be shared with
// the configuration (the cluster network's runtimeConfig).
func withArg(args map[string]any, key string, value any) map[string]any {
	out := make(map[string]any, len(args)+1)
	for k, v := range args {
		out[k] = v
	}
	out[key] = value
	return out
}
