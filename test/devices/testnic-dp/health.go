package main

import (
	"slices"
	"sync"

	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"
)

// health tracks the devices and their health: a device is Healthy while
// its interface exists in the plugin's network namespace.
type health struct {
	ids    []string
	exists func(ifname string) bool

	mu      sync.Mutex // guards the fields below
	healthy []bool
	changed chan struct{} // closed, and replaced, when health changes
}

// newHealth tracks ids, whose interfaces exists looks up; all start
// unknown until the first refresh.
func newHealth(ids []string, exists func(string) bool) *health {
	return &health{ids: ids, exists: exists, healthy: make([]bool, len(ids)), changed: make(chan struct{})}
}

// refresh looks every interface up and returns the devices whose health
// changed; watchers are woken when there is one.
func (h *health) refresh() []*pluginapi.Device {
	now := make([]bool, len(h.ids))
	for i, id := range h.ids {
		now[i] = h.exists(id)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var diff []*pluginapi.Device
	for i := range now {
		if now[i] != h.healthy[i] {
			diff = append(diff, device(h.ids[i], now[i]))
		}
	}
	if len(diff) > 0 {
		h.healthy = now
		close(h.changed)
		h.changed = make(chan struct{})
	}
	return diff
}

// snapshot returns the device list and a channel closed on the next change.
func (h *health) snapshot() ([]*pluginapi.Device, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	devs := make([]*pluginapi.Device, len(h.ids))
	for i, id := range h.ids {
		devs[i] = device(id, h.healthy[i])
	}
	return devs, h.changed
}

// known reports whether id is one of the devices.
func (h *health) known(id string) bool {
	return slices.Contains(h.ids, id)
}

// device is the API form of one device.
func device(id string, healthy bool) *pluginapi.Device {
	state := pluginapi.Unhealthy
	if healthy {
		state = pluginapi.Healthy
	}
	return &pluginapi.Device{ID: id, Health: state}
}
