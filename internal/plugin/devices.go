package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"

	"github.com/plexus-cni/plexus/internal/cache"
	"github.com/plexus-cni/plexus/internal/cnierr"
	"github.com/plexus-cni/plexus/internal/config"
	"github.com/plexus-cni/plexus/internal/devices"
	"github.com/plexus-cni/plexus/internal/plan"
)

// DeviceFinder finds the devices the kubelet gave a pod, by resource name.
type DeviceFinder interface {
	Devices(ctx context.Context, pod *corev1.Pod) (map[string][]string, error)
}

// KubeletDevices is the default device lookup: the kubelet's PodResources
// socket of the configuration and, when the API client reads DRA objects
// (both plexus clients do), the pod's ResourceClaims.
func KubeletDevices(c *config.NetConf, api API) DeviceFinder {
	f := &devices.Finder{PodResources: &devices.Kubelet{Socket: c.PodResourcesSocket}}
	if cl, ok := api.(devices.Claims); ok {
		f.Claims = cl
	}
	return f
}

// assignDevices gives the attachments whose networks name a resource their
// devices, and names every attachment's device-info file. Only a pod with
// such networks makes the kubelet be asked.
func (p *Plugin) assignDevices(ctx context.Context, r *request, api API, pod *corev1.Pod, atts []plan.Attachment) error {
	if plan.NeedsDevices(atts) {
		podRef := r.pod.podRef()
		if pod == nil {
			return cnierr.New(cnierr.InvalidNetConfig,
				"a network names a resource (annotation k8s.v1.cni.cncf.io/resourceName) but the request is not for a Kubernetes pod (CNI_ARGS K8S_POD_NAME is %q)", r.pod.Name)
		}
		devs, err := p.deviceFinder(r.conf, api).Devices(ctx, pod)
		if err != nil {
			return deviceLookupError(podRef, err)
		}
		if err := plan.AssignDevices(atts, devs, podRef); err != nil {
			return err
		}
	}
	plan.SetDeviceInfoFiles(atts, r.conf.DeviceInfoDir, r.args.ContainerID)
	return nil
}

func (p *Plugin) deviceFinder(c *config.NetConf, api API) DeviceFinder {
	if p.Devices != nil {
		return p.Devices(c, api)
	}
	return KubeletDevices(c, api)
}

// deviceLookupError marks what is worth retrying: a kubelet that did not
// answer, a claim not allocated yet. The API's own errors keep their
// classification (a 403 is the operator's).
func deviceLookupError(podRef string, err error) error {
	err = fmt.Errorf("looking up the devices of pod %s: %w", podRef, err)
	var unavailable *devices.UnavailableError
	if errors.As(err, &unavailable) || errors.Is(err, devices.ErrClaimPending) {
		return cnierr.Wrap(cnierr.TryAgainLater, err)
	}
	return err
}

// writeDeviceInfo fills the device-info file of every attachment with a
// device from the device plugin's file for that device, when the plugin
// wrote one (NPWG §A.9); a file left by an earlier attempt is replaced.
func writeDeviceInfo(dir string, atts []plan.Attachment) error {
	for _, a := range atts {
		if a.DeviceInfoFile == "" || a.DeviceID == "" {
			continue
		}
		src := plan.DevicePluginInfoFile(dir, a.Delegate.ResourceName, a.DeviceID)
		b, err := os.ReadFile(src)
		if errors.Is(err, os.ErrNotExist) {
			continue // this device plugin writes no device-info
		}
		if err != nil {
			return cnierr.Wrap(cnierr.IOFailure, fmt.Errorf("%s: device-info of device %s: %w", a.StatusName, a.DeviceID, err))
		}
		if !json.Valid(b) {
			return cnierr.New(cnierr.InvalidNetConfig, "%s: the device plugin's device-info file %s is not JSON", a.StatusName, src)
		}
		if err := writeFile(a.DeviceInfoFile, b); err != nil {
			return cnierr.Wrap(cnierr.IOFailure, fmt.Errorf("%s: %w", a.StatusName, err))
		}
	}
	return nil
}

func writeFile(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return cache.WriteAtomic(path, b, 0o644)
}

// readDeviceInfo returns the content of a device-info file after the
// delegates ran (a plugin may have written or updated it); nil without one.
func readDeviceInfo(path string) (json.RawMessage, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("device-info file %s is not JSON", path)
	}
	return b, nil
}

// removeDeviceInfo removes attachments' device-info files; one already
// gone is fine (DEL is idempotent).
func removeDeviceInfo(paths []string) error {
	var errs []error
	for _, p := range paths {
		if p == "" {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
