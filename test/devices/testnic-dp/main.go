// Command testnic-dp is a kubelet device plugin for tests: it advertises host
// interfaces (veths a test made) as devices of one extended resource, by
// default plexus.dev/testnic, and writes a device-info file (spec A.9) for
// each, the way an SR-IOV device plugin advertises VFs.
//
// It serves the v1beta1 DevicePlugin API on <plugin-dir>/<resource with "/"
// replaced by "-">.sock and registers with kubelet at
// <plugin-dir>/kubelet.sock. A device ID is the interface name; a device is
// Healthy while its interface exists in the plugin's network namespace. The
// device-info files are <devinfo-dir>/<resource>-<deviceID>-device.json
// ("/" replaced by "-"), of type pci with a fake address 0000:ff:DD.F made
// from the device's position in -devices. On SIGTERM or SIGINT it removes
// its socket and its files. It logs one line per event to stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/plexus-cni/plexus/test/devices/testnic"
)

// options are the command-line flags.
type options struct {
	resource   string
	devices    []string
	pluginDir  string
	devinfoDir string
	interval   time.Duration
}

func main() {
	logger := log.New(os.Stderr, "testnic-dp: ", log.LstdFlags|log.Lmicroseconds)
	opts, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		logger.Print(err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, opts, logger); err != nil {
		logger.Print(err)
		os.Exit(1)
	}
}

// parseFlags reads and checks the flags.
func parseFlags(args []string, out io.Writer) (options, error) {
	var o options
	var devices string
	fs := flag.NewFlagSet("testnic-dp", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.resource, "resource", testnic.Resource, "extended resource name (domain/name)")
	fs.StringVar(&devices, "devices", "", "comma-separated host interface names, one device each (required)")
	fs.StringVar(&o.pluginDir, "plugin-dir", "/var/lib/kubelet/device-plugins", "kubelet's device-plugin directory")
	fs.StringVar(&o.devinfoDir, "devinfo-dir", "/var/run/k8s.cni.cncf.io/devinfo/dp", "device-info file directory")
	fs.DurationVar(&o.interval, "interval", time.Second, "how often to check sockets and device health")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if devices != "" {
		o.devices = strings.Split(devices, ",")
	}
	return o, o.validate()
}

// validate checks the options, naming the flag and its value.
func (o options) validate() error {
	domain, name, ok := strings.Cut(o.resource, "/")
	if !ok || domain == "" || name == "" || strings.Contains(name, "/") {
		return fmt.Errorf("-resource %q: want <domain>/<name>", o.resource)
	}
	if len(o.devices) == 0 {
		return errors.New("-devices is empty: name at least one interface")
	}
	if len(o.devices) > testnic.MaxDevices {
		return fmt.Errorf("-devices has %d interfaces, at most %d", len(o.devices), testnic.MaxDevices)
	}
	seen := map[string]bool{}
	for _, d := range o.devices {
		if d == "" || len(d) > 15 || strings.ContainsAny(d, "/: \t\n") {
			return fmt.Errorf("-devices: %q is not an interface name", d)
		}
		if seen[d] {
			return fmt.Errorf("-devices: %q is listed twice", d)
		}
		seen[d] = true
	}
	if o.interval <= 0 {
		return fmt.Errorf("-interval %v: want a positive duration", o.interval)
	}
	return nil
}

// interfaceExists reports whether the network namespace has an interface
// named name.
func interfaceExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

// run writes the device-info files, serves until ctx ends, then removes the
// socket and the files.
func run(ctx context.Context, opts options, logger *log.Logger) error {
	files, err := writeDeviceInfo(opts.devinfoDir, opts.resource, opts.devices)
	if err != nil {
		return err
	}
	for _, f := range files {
		logger.Printf("wrote device-info file %s", f)
	}
	h := newHealth(opts.devices, interfaceExists)
	for _, d := range h.refresh() {
		logger.Printf("device %s is %s", d.ID, d.Health)
	}
	p := &plugin{resource: opts.resource, health: h, log: logger}
	sup := &supervisor{opts: opts, plugin: p, log: logger}
	err = errors.Join(sup.run(ctx), removeFiles(files))
	logger.Printf("stopped: removed the socket and %d device-info files", len(files))
	return err
}
