// Command testnic-dra is a test DRA driver for the real-cluster tier: it
// registers with the node's kubelet through the kubelet plugin API, and
// publishes the host interfaces it is given (veths the test made) as the
// devices of one ResourceSlice of its node, each with the attributes plexus
// and Multus read, k8s.cni.cncf.io/resourceName and
// k8s.cni.cncf.io/deviceID (the interface name). Preparing a claim hands
// the kubelet no CDI device (the interface is moved into the pod by the
// network's CNI plugin, as SR-IOV CNI moves a VF); it only checks that the
// devices are its own. On SIGTERM it removes its slices and exits.
//
//	testnic-dra -node node-1 -kubeconfig PATH -devices tna0,tnb0
//	            [-driver nic.plexus.dev] [-resource plexus.dev/testnic-dra]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/dynamic-resource-allocation/kubeletplugin"
	"k8s.io/dynamic-resource-allocation/resourceslice"
)

func main() {
	driver := flag.String("driver", "nic.plexus.dev", "DRA driver name")
	resource := flag.String("resource", "plexus.dev/testnic-dra", "value of the k8s.cni.cncf.io/resourceName attribute")
	node := flag.String("node", "", "this node's name")
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig that may publish ResourceSlices")
	devs := flag.String("devices", "", "comma-separated interface names, one device each")
	flag.Parse()
	logger := log.New(os.Stderr, "testnic-dra: ", log.LstdFlags|log.Lmicroseconds)
	if *node == "" || *kubeconfig == "" || *devs == "" {
		logger.Fatal("-node, -kubeconfig and -devices are required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, logger, *driver, *resource, *node, *kubeconfig, strings.Split(*devs, ",")); err != nil {
		logger.Fatal(err)
	}
}

func run(ctx context.Context, logger *log.Logger, driver, resource, node, kubeconfig string, ifaces []string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	d := &plugin{driver: driver, log: logger}
	for i := range ifaces {
		d.devices = append(d.devices, fmt.Sprintf("dev-%d", i))
	}
	dataDir := kubeletplugin.KubeletPluginsDir + "/" + driver
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return err
	}
	helper, err := kubeletplugin.Start(ctx, d,
		kubeletplugin.DriverName(driver), kubeletplugin.NodeName(node), kubeletplugin.KubeClient(cs),
		kubeletplugin.PluginDataDirectoryPath(dataDir))
	if err != nil {
		return fmt.Errorf("start the kubelet plugin: %w", err)
	}
	var devices []resourceapi.Device
	for i, name := range d.devices {
		devices = append(devices, resourceapi.Device{Name: name, Attributes: map[resourceapi.QualifiedName]resourceapi.DeviceAttribute{
			"k8s.cni.cncf.io/resourceName": {StringValue: &resource},
			"k8s.cni.cncf.io/deviceID":     {StringValue: &ifaces[i]},
		}})
	}
	if err := helper.PublishResources(ctx, resourceslice.DriverResources{Pools: map[string]resourceslice.Pool{
		node: {Slices: []resourceslice.Slice{{Devices: devices}}},
	}}); err != nil {
		return fmt.Errorf("publish ResourceSlices: %w", err)
	}
	logger.Printf("registered %s on %s with devices %v (%s)", driver, node, ifaces, resource)
	<-ctx.Done()
	helper.Stop()
	// The helper removes nothing it published: do it, as a driver being
	// uninstalled does.
	cleanup, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	mine := metav1.ListOptions{FieldSelector: fields.AndSelectors(
		fields.OneTermEqualSelector(resourceapi.ResourceSliceSelectorDriver, driver),
		fields.OneTermEqualSelector(resourceapi.ResourceSliceSelectorNodeName, node)).String()}
	if err := cs.ResourceV1().ResourceSlices().DeleteCollection(cleanup, metav1.DeleteOptions{}, mine); err != nil {
		return fmt.Errorf("remove ResourceSlices: %w", err)
	}
	logger.Printf("stopped; ResourceSlices removed")
	return nil
}

// plugin prepares claims of its own devices; nothing else to do.
type plugin struct {
	driver  string
	devices []string
	log     *log.Logger
}

func (p *plugin) PrepareResourceClaims(_ context.Context, claims []*resourceapi.ResourceClaim) (map[types.UID]kubeletplugin.PrepareResult, error) {
	out := map[types.UID]kubeletplugin.PrepareResult{}
	for _, c := range claims {
		var res kubeletplugin.PrepareResult
		for _, r := range c.Status.Allocation.Devices.Results {
			if r.Driver != p.driver {
				continue
			}
			if !slices.Contains(p.devices, r.Device) {
				res.Err = fmt.Errorf("claim %s/%s: device %s is not one of %v", c.Namespace, c.Name, r.Device, p.devices)
				break
			}
			res.Devices = append(res.Devices, kubeletplugin.Device{Requests: []string{r.Request}, PoolName: r.Pool, DeviceName: r.Device})
		}
		p.log.Printf("prepare claim %s/%s: %d devices, err %v", c.Namespace, c.Name, len(res.Devices), res.Err)
		out[c.UID] = res
	}
	return out, nil
}

func (p *plugin) UnprepareResourceClaims(_ context.Context, claims []kubeletplugin.NamespacedObject) (map[types.UID]error, error) {
	out := map[types.UID]error{}
	for _, c := range claims {
		p.log.Printf("unprepare claim %s", c)
		out[c.UID] = nil
	}
	return out, nil
}

func (p *plugin) HandleError(_ context.Context, err error, msg string) {
	p.log.Printf("%s: %v (recoverable: %v)", msg, err, errors.Is(err, kubeletplugin.ErrRecoverable))
}

func (p *plugin) WatchHealthStatus(context.Context, chan<- kubeletplugin.DeviceHealthReport) error {
	return kubeletplugin.ErrHealthNotSupported
}
