// Package plan turns a pod, its annotations and the plexus configuration
// into the ordered list of attachments a CNI ADD must make: which delegate
// configuration, which interface name, which runtime arguments. It performs
// no I/O of its own (network definitions come through a Resolver), so every
// rule — isolation, interface naming, capability checks, default-network
// override — is tested without root or an API server.
package plan

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"

	"github.com/plexus-cni/plexus/internal/cnierr"
	"github.com/plexus-cni/plexus/pkg/fielderr"
	"github.com/plexus-cni/plexus/pkg/nad"
	"github.com/plexus-cni/plexus/pkg/netselect"
)

// Pod is what the planner needs to know about the pod.
type Pod struct {
	Namespace   string
	Name        string
	UID         string
	Annotations map[string]string
}

// Resolver finds the delegate configuration of a NetworkAttachmentDefinition.
// A NAD that does not exist is an error wrapping nad.ErrNotFound; other
// errors (the API's) are returned as they are, for cnierr to classify.
type Resolver interface {
	NAD(ctx context.Context, namespace, name string) (*nad.Delegate, error)
}

// Input collects everything the plan depends on.
type Input struct {
	// Pod is nil when the request does not come from Kubernetes.
	Pod *Pod
	// IfName is CNI_IFNAME, the cluster network's interface (usually eth0).
	IfName string
	// Cluster is the cluster-wide default network.
	Cluster *nad.Delegate
	// DefaultNetworks are added to every pod outside system namespaces.
	DefaultNetworks []*nad.Delegate
	// RuntimeConfig holds the runtime's capability args (cluster network only).
	RuntimeConfig map[string]any
	// DefaultNetworkNamespace is where the default-network annotation's NAD
	// lives unless it names a namespace (Multus's multusNamespace).
	DefaultNetworkNamespace string
	// NamespaceIsolation restricts NADs to the pod's namespace and Global.
	NamespaceIsolation bool
	GlobalNamespaces   []string
	// SystemNamespaces get no DefaultNetworks.
	SystemNamespaces []string
}

// Attachment is one network attachment of the pod.
type Attachment struct {
	// StatusName is the name in network-status: "ns/name" for NADs, the CNI
	// network name for the cluster network and configured defaults.
	StatusName string
	IfName     string
	Delegate   *nad.Delegate
	// CapabilityArgs become runtimeConfig for plugins that declare them.
	CapabilityArgs map[string]any
	// Default marks the cluster network (network-status "default": true).
	Default bool
	// DefaultRoute lists the gateways requested with "default-route"; nil
	// when the selection did not carry the key.
	DefaultRoute []net.IP
	// Selection is the annotation element, nil for configured networks.
	Selection *netselect.Selection
	// DeviceID is the device given to an attachment whose network names a
	// resource (AssignDevices); "" otherwise.
	DeviceID string
	// DeviceInfoFile is the attachment's CNI device-info file
	// (SetDeviceInfoFiles); "" when it has none.
	DeviceInfoFile string
}

// Build returns the pod's attachments in order: cluster network (or its
// per-pod replacement) first, then defaultNetworks, then the annotation's
// selections in annotation order.
func Build(ctx context.Context, in Input, r Resolver) ([]Attachment, error) {
	cluster, err := clusterAttachment(ctx, in, r)
	if err != nil {
		return nil, err
	}
	atts := []Attachment{cluster}
	if in.Pod == nil || !slices.Contains(in.SystemNamespaces, in.Pod.Namespace) {
		for _, d := range in.DefaultNetworks {
			atts = append(atts, Attachment{StatusName: d.Name, Delegate: d})
		}
	}
	sels, err := selections(in)
	if err != nil {
		return nil, err
	}
	if err := checkIsolation(in, sels); err != nil {
		return nil, err
	}
	nads := resolveAll(ctx, r, sels)
	for i := range sels {
		a, err := selectionAttachment(&sels[i], i, nads[nadKey{sels[i].Namespace, sels[i].Name}])
		if err != nil {
			return nil, err
		}
		atts = append(atts, a)
	}
	if err := nameInterfaces(atts); err != nil {
		return nil, err
	}
	return atts, nil
}

// ClusterNetwork is the cluster network's attachment, in.Cluster on
// in.IfName with the runtime's capability arguments, as Build makes it
// unless the pod's v1.multus-cni.io/default-network annotation replaces it.
func ClusterNetwork(in Input) Attachment {
	return Attachment{
		StatusName:     in.Cluster.Name,
		IfName:         in.IfName,
		Delegate:       in.Cluster,
		CapabilityArgs: in.RuntimeConfig,
		Default:        true,
	}
}

func clusterAttachment(ctx context.Context, in Input, r Resolver) (Attachment, error) {
	a := ClusterNetwork(in)
	if in.Pod == nil {
		return a, nil
	}
	value, ok := in.Pod.Annotations[netselect.DefaultNetworkAnnotation]
	if !ok {
		return a, nil
	}
	sel, err := netselect.ParseDefaultNetwork(value, in.DefaultNetworkNamespace)
	if err != nil {
		return a, cnierr.Wrap(cnierr.InvalidNetConfig, annotationError(netselect.DefaultNetworkAnnotation, err))
	}
	d, err := r.NAD(ctx, sel.Namespace, sel.Name)
	if err != nil {
		return a, fmt.Errorf("default network %s/%s (annotation %s): %w", sel.Namespace, sel.Name, netselect.DefaultNetworkAnnotation, err)
	}
	a.StatusName = sel.Namespace + "/" + sel.Name
	a.Delegate = d
	return a, nil
}

func selections(in Input) ([]netselect.Selection, error) {
	if in.Pod == nil {
		return nil, nil
	}
	value, ok := in.Pod.Annotations[netselect.NetworksAnnotation]
	if !ok {
		return nil, nil
	}
	sels, err := netselect.ParseNetworks(value, in.Pod.Namespace)
	if err != nil {
		return nil, cnierr.Wrap(cnierr.InvalidNetConfig, annotationError(netselect.NetworksAnnotation, err))
	}
	return sels, nil
}

func annotationError(key string, err error) error {
	return fmt.Errorf("pod annotation %s: %w", key, err)
}

// checkIsolation refuses selections outside the pod's namespace and the
// global namespaces when namespace isolation is on.
func checkIsolation(in Input, sels []netselect.Selection) error {
	if !in.NamespaceIsolation {
		return nil
	}
	for i, sel := range sels {
		if sel.Namespace != in.Pod.Namespace && !slices.Contains(in.GlobalNamespaces, sel.Namespace) {
			return cnierr.New(cnierr.InvalidNetConfig,
				"networks[%d]: network %s/%s is in another namespace than pod %s/%s and namespaceIsolation allows only %q and the global namespaces %v",
				i, sel.Namespace, sel.Name, in.Pod.Namespace, in.Pod.Name, in.Pod.Namespace, in.GlobalNamespaces)
		}
	}
	return nil
}

type nadKey struct{ namespace, name string }

type resolved struct {
	d   *nad.Delegate
	err error
}

// resolveAll looks up every distinct NAD of the selections at once: one
// round trip's latency instead of one per network.
func resolveAll(ctx context.Context, r Resolver, sels []netselect.Selection) map[nadKey]resolved {
	var keys []nadKey
	for _, s := range sels {
		if k := (nadKey{s.Namespace, s.Name}); !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	out := make(map[nadKey]resolved, len(keys))
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for _, k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := r.NAD(ctx, k.namespace, k.name)
			mu.Lock()
			out[k] = resolved{d, err}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

func selectionAttachment(sel *netselect.Selection, i int, res resolved) (Attachment, error) {
	field := "networks[" + strconv.Itoa(i) + "]"
	d, err := res.d, res.err
	if err != nil {
		return Attachment{}, fmt.Errorf("%s: network %s/%s: %w", field, sel.Namespace, sel.Name, err)
	}
	if len(sel.CNIArgs) > 0 {
		if d, err = d.WithCNIArgs(sel.CNIArgs); err != nil {
			return Attachment{}, cnierr.Wrap(cnierr.InvalidNetConfig, fmt.Errorf("%s.cni-args: %w", field, err))
		}
	}
	// The claim goes to the delegates as args.cni, where an IPAM plugin
	// that knows IPAMClaims (plexus-ipam) reads it.
	if sel.IPAMClaimReference != "" {
		if d, err = d.WithCNIArgs(map[string]any{"ipam-claim-reference": sel.IPAMClaimReference}); err != nil {
			return Attachment{}, cnierr.Wrap(cnierr.InvalidNetConfig, fmt.Errorf("%s.ipam-claim-reference: %w", field, err))
		}
	}
	caps, err := capabilityArgs(sel, d, field)
	if err != nil {
		return Attachment{}, err
	}
	return Attachment{
		StatusName:     sel.Namespace + "/" + sel.Name,
		IfName:         sel.InterfaceName,
		Delegate:       d,
		CapabilityArgs: caps,
		DefaultRoute:   sel.DefaultRoute,
		Selection:      sel,
	}, nil
}

// capabilityArgs builds the runtimeConfig of a selection and checks that the
// network declares every capability the pod asks for (NPWG §A.3).
func capabilityArgs(sel *netselect.Selection, d *nad.Delegate, field string) (map[string]any, error) {
	type want struct {
		key, cap string
		set      bool
		value    any
	}
	wants := []want{
		{"ips", "ips", len(sel.IPs) > 0, sel.IPs},
		{"mac", "mac", sel.MAC != "", sel.MAC},
		{"portMappings", "portMappings", len(sel.PortMappings) > 0, sel.PortMappings},
		{"bandwidth", "bandwidth", sel.Bandwidth != nil, sel.Bandwidth},
		{"infiniband-guid", "infinibandGUID", sel.InfinibandGUID != "", sel.InfinibandGUID},
		{"deviceID", "deviceID", sel.DeviceID != "", sel.DeviceID},
	}
	args := map[string]any{}
	for _, w := range wants {
		if !w.set {
			continue
		}
		if !d.Capabilities[w.cap] {
			return nil, fielderr.New(field+"."+w.key, "",
				"network %s/%s does not support it: no plugin of %s declares the capability %q",
				sel.Namespace, sel.Name, d.Source, w.cap)
		}
		args[w.cap] = w.value
	}
	if len(args) == 0 {
		return nil, nil
	}
	return args, nil
}

// nameInterfaces gives every attachment without an explicit interface the
// name net<position>, skipping names claimed explicitly, and rejects any
// name used twice.
func nameInterfaces(atts []Attachment) error {
	taken := map[string]int{}
	for i, a := range atts {
		if a.IfName == "" {
			continue
		}
		if j, dup := taken[a.IfName]; dup {
			return cnierr.New(cnierr.InvalidNetConfig,
				"interface name %q is requested by both %s (attachment %d) and %s (attachment %d)",
				a.IfName, atts[j].StatusName, j, a.StatusName, i)
		}
		taken[a.IfName] = i
	}
	next := 1
	for i := range atts {
		if atts[i].IfName != "" {
			continue
		}
		if next < i {
			next = i
		}
		for {
			name := "net" + strconv.Itoa(next)
			next++
			if _, used := taken[name]; !used {
				atts[i].IfName = name
				taken[name] = i
				break
			}
		}
	}
	return nil
}
