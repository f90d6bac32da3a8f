package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/plexus-cni/plexus/test/devices/testnic"
)

// deviceInfo is a device-info file (spec A.9, version 1.1.0) of type pci.
type deviceInfo struct {
	Type    string  `json:"type"`
	Version string  `json:"version"`
	PCI     pciInfo `json:"pci"`
}

// pciInfo is the "pci" object of a device-info file.
type pciInfo struct {
	PCIAddress string `json:"pci-address"`
}

// newDeviceInfo is the device-info content of the index-th device.
func newDeviceInfo(index int) deviceInfo {
	return deviceInfo{Type: "pci", Version: "1.1.0", PCI: pciInfo{PCIAddress: testnic.FakePCIAddress(index)}}
}

// writeDeviceInfo writes one device-info file per device into dir, which it
// creates if missing, and returns the paths written. On failure it removes
// what it wrote.
func writeDeviceInfo(dir, resource string, devices []string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create device-info dir %q: %w", dir, err)
	}
	var paths []string
	for i, id := range devices {
		path := filepath.Join(dir, testnic.DeviceInfoFileName(resource, id))
		if err := writeJSON(path, newDeviceInfo(i)); err != nil {
			return nil, errors.Join(err, removeFiles(paths))
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// writeJSON writes v to path atomically, mode 0644.
func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %q: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write %q: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return errors.Join(fmt.Errorf("write %q: %w", path, err), os.Remove(tmp))
	}
	return nil
}

// removeFiles removes paths; files already gone are not an error.
func removeFiles(paths []string) error {
	var errs []error
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
