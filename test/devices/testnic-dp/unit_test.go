package main

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	pluginapi "k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1"

	"github.com/plexus-cni/plexus/test/devices/testnic"
)

func TestParseFlags(t *testing.T) {
	o, err := parseFlags([]string{"-devices", "tna0,tnb0", "-plugin-dir", "/p", "-devinfo-dir", "/d"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.resource != testnic.Resource || !slices.Equal(o.devices, []string{"tna0", "tnb0"}) || o.pluginDir != "/p" || o.devinfoDir != "/d" {
		t.Fatalf("parseFlags = %+v", o)
	}
	for args, want := range map[string]string{
		"":                                   "-devices is empty",
		"-devices tna0 -resource testnic":    `-resource "testnic"`,
		"-devices tna0 -resource a/b/c":      `-resource "a/b/c"`,
		"-devices tna0,tna0":                 `"tna0" is listed twice`,
		"-devices tna0,":                     `"" is not an interface name`,
		"-devices a234567890123456":          `"a234567890123456" is not an interface name`,
		"-devices tna0 -interval 0s":         "-interval 0s",
		"-devices tna0 extra":                `unexpected arguments ["extra"]`,
		"-devices tna0 -no-such-flag":        "flag provided but not defined",
		"-devices tna0 -resource /testnic":   `-resource "/testnic"`,
		"-devices tna0 -resource plexus.dev": `-resource "plexus.dev"`,
	} {
		_, err := parseFlags(strings.Fields(args), io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseFlags(%q) = %v, want an error containing %q", args, err, want)
		}
	}
}

func TestHealthRefreshReportsChanges(t *testing.T) {
	present := map[string]bool{"tna0": true}
	h := newHealth([]string{"tna0", "tnb0"}, func(n string) bool { return present[n] })
	devs, changed := h.snapshot()
	if got := healthOf(devs); got != "tna0=Unhealthy tnb0=Unhealthy" {
		t.Fatalf("before the first refresh: %s", got)
	}
	if got := healthOf(h.refresh()); got != "tna0=Healthy" {
		t.Fatalf("first refresh changed %s, want tna0=Healthy", got)
	}
	assertClosed(t, changed, true)
	devs, changed = h.snapshot()
	if got := healthOf(h.refresh()); got != "" {
		t.Fatalf("refresh without a change reported %s", got)
	}
	assertClosed(t, changed, false)
	present["tna0"], present["tnb0"] = false, true
	if got := healthOf(h.refresh()); got != "tna0=Unhealthy tnb0=Healthy" {
		t.Fatalf("refresh after swapping: %s", got)
	}
	assertClosed(t, changed, true)
	if got := healthOf(devs); got != "tna0=Healthy tnb0=Unhealthy" {
		t.Fatalf("an earlier snapshot changed: %s", got)
	}
}

func healthOf(devs []*pluginapi.Device) string {
	var parts []string
	for _, d := range devs {
		parts = append(parts, d.ID+"="+d.Health)
	}
	return strings.Join(parts, " ")
}

func assertClosed(t *testing.T, ch <-chan struct{}, want bool) {
	t.Helper()
	select {
	case <-ch:
		if !want {
			t.Fatal("watch channel closed without a change")
		}
	default:
		if want {
			t.Fatal("watch channel not closed after a change")
		}
	}
}

func TestAllocate(t *testing.T) {
	p := &plugin{resource: testnic.Resource, log: log.New(io.Discard, "", 0),
		health: newHealth([]string{"tna0", "tnb0"}, func(string) bool { return true })}
	resp, err := p.Allocate(context.Background(), &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{
		{DevicesIds: []string{"tna0", "tnb0"}}, {DevicesIds: []string{"tnb0"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.ContainerResponses) != 2 || resp.ContainerResponses[0].Envs[testnic.AllocEnv] != "tna0,tnb0" ||
		resp.ContainerResponses[1].Envs[testnic.AllocEnv] != "tnb0" {
		t.Fatalf("Allocate = %v", resp)
	}
	_, err = p.Allocate(context.Background(), &pluginapi.AllocateRequest{ContainerRequests: []*pluginapi.ContainerAllocateRequest{
		{DevicesIds: []string{"tnz9"}},
	}})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), `"tnz9"`) {
		t.Fatalf("Allocate of an unknown device = %v, want InvalidArgument naming it", err)
	}
}

func TestWriteAndRemoveDeviceInfo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "devinfo", "dp")
	paths, err := writeDeviceInfo(dir, "example.com/nic", []string{"tna0", "tnb0"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "example.com-nic-tna0-device.json"), filepath.Join(dir, "example.com-nic-tnb0-device.json")}
	if !slices.Equal(paths, want) {
		t.Fatalf("paths = %v, want %v", paths, want)
	}
	var got map[string]any
	data, err := os.ReadFile(want[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	pci, _ := got["pci"].(map[string]any)
	if got["type"] != "pci" || got["version"] != "1.1.0" || pci["pci-address"] != "0000:ff:00.1" || len(got) != 3 || len(pci) != 1 {
		t.Fatalf("device-info of tnb0 = %s", data)
	}
	if err := removeFiles(append(paths, filepath.Join(dir, "never-written.json"))); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
}
