// Package testnic holds what the test devices (the testnic-dp device plugin
// and the testnic-cni plugin) share with each other and with the tests that
// use them: the resource name, the names of the files they make and the
// keys they write.
package testnic

import (
	"fmt"
	"strings"
)

const (
	// Resource is testnic-dp's default extended resource name.
	Resource = "plexus.dev/testnic"
	// AllocEnv is the variable testnic-dp's Allocate sets in a container:
	// the allocated device IDs, comma-separated.
	AllocEnv = "PLEXUS_TESTNIC"
	// IfnameKey is the key testnic-cni's ADD adds to the device-info file
	// named by the CNIDeviceInfoFile capability argument; its value is
	// CNI_IFNAME.
	IfnameKey = "testnic-ifname"
	// MaxDevices is how many fake PCI addresses there are.
	MaxDevices = 256
)

// SocketName is the file name of testnic-dp's socket for resource in the
// kubelet plugin directory: "/" becomes "-", ".sock" is appended.
func SocketName(resource string) string {
	return strings.ReplaceAll(resource, "/", "-") + ".sock"
}

// DeviceInfoFileName is the name spec A.9 gives a device plugin's
// device-info file for one device: "<resource>-<deviceID>-device.json",
// with "/" replaced by "-" in both parts.
func DeviceInfoFileName(resource, deviceID string) string {
	return strings.ReplaceAll(resource, "/", "-") + "-" + strings.ReplaceAll(deviceID, "/", "-") + "-device.json"
}

// FakePCIAddress is the PCI address testnic-dp gives the index-th device
// of -devices (0 ≤ index < MaxDevices): bus ff, device index/8, function
// index%8, e.g. 0000:ff:00.0, 0000:ff:00.7, 0000:ff:01.0.
func FakePCIAddress(index int) string {
	return fmt.Sprintf("0000:ff:%02x.%x", index/8, index%8)
}
