package main

import (
	"encoding/json"
	"fmt"

	"github.com/containernetworking/cni/pkg/types"
)

// netConf is the plugin's configuration: the keys a meta-plugin injects for
// a device-backed network, next to the standard ones.
type netConf struct {
	types.NetConf
	// DeviceID is the allocated device: the name of a host interface.
	DeviceID string `json:"deviceID"`
	// PCIBusID is injected with the same value as DeviceID.
	PCIBusID string `json:"pciBusID"`
	// RuntimeConfig holds the capability arguments the NAD declares.
	RuntimeConfig runtimeConfig `json:"runtimeConfig"`
}

// runtimeConfig holds the capability arguments the plugin reads.
type runtimeConfig struct {
	// DeviceID is the "deviceID" capability argument.
	DeviceID string `json:"deviceID"`
	// DeviceInfoFile is the "CNIDeviceInfoFile" capability argument.
	DeviceInfoFile string `json:"CNIDeviceInfoFile"`
}

// loadConf decodes the plugin configuration from stdin.
func loadConf(stdin []byte) (*netConf, error) {
	conf := &netConf{}
	if err := json.Unmarshal(stdin, conf); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "failed to decode network configuration", err.Error())
	}
	return conf, nil
}

// validateDevice checks what ADD needs: a top-level deviceID, pciBusID equal
// to it, and the deviceID capability argument equal to it. The error names
// the wrong key and its value, so a test can tell which injection is
// missing.
func validateDevice(conf *netConf) error {
	if err := requireDeviceID(conf); err != nil {
		return err
	}
	if conf.PCIBusID != conf.DeviceID {
		return invalidKey("pciBusID", conf.PCIBusID, conf.DeviceID)
	}
	if conf.RuntimeConfig.DeviceID != conf.DeviceID {
		return invalidKey("runtimeConfig.deviceID", conf.RuntimeConfig.DeviceID, conf.DeviceID)
	}
	return nil
}

// requireDeviceID checks that the top-level deviceID is set: DEL and CHECK
// need it to find the device.
func requireDeviceID(conf *netConf) error {
	if conf.DeviceID == "" {
		return types.NewError(types.ErrInvalidNetworkConfig,
			`config key "deviceID" is empty ("")`, "the meta-plugin injected no device")
	}
	return nil
}

// invalidKey is the CNI error for a key whose value is not the deviceID.
func invalidKey(key, got, want string) error {
	return types.NewError(types.ErrInvalidNetworkConfig,
		fmt.Sprintf("config key %q is %q, want the deviceID %q", key, got, want), "")
}
