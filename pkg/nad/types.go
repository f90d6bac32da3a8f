// Package nad reads NetworkAttachmentDefinitions and CNI configuration files
// and turns them into normalised delegate configurations: always a CNI
// configuration list, with the network name injected, validated down to the
// IPAM ranges, so that the plugin, the admission webhook and `plexusctl lint`
// share one definition of "a valid network".
//
// Choices where the specifications leave room:
//   - A configuration without cniVersion (or with "") gets
//     DefaultCNIVersion, "0.3.1", the oldest version whose results carry
//     interfaces (libcni would pass "" and plugins would read it as 0.1.0,
//     whose results have no interface names for network-status). A
//     cniVersion libcni does not support is an error.
//   - A single plugin configuration is wrapped as
//     {"cniVersion", "name", "plugins": [<the object as written>]}; the
//     list-level name and cniVersion are injected into plugins by libcni.
//   - The name is injected when missing or empty (spec A.2) and must then
//     match the CNI network name syntax.
//   - IPAM sections of known types (host-local, static, whereabouts,
//     plexus-ipam) are checked where the IPAM plugin itself would only fail
//     at ADD time, or silently ignore a value: whereabouts' range_start
//     outside the range is an error here.
package nad

import (
	k8scnicncfio "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
)

// API coordinates of the NetworkAttachmentDefinition CRD. The object type
// itself is the network plumbing working group's (NetworkAttachmentDefinition
// below); these names are kept for the places that build paths, GVRs and
// error messages.
const (
	Group    = k8scnicncfio.GroupName
	Version  = "v1"
	Resource = "network-attachment-definitions"
	Kind     = "NetworkAttachmentDefinition"

	// ResourceNameAnnotation names the device-plugin resource of a NAD.
	ResourceNameAnnotation = "k8s.v1.cni.cncf.io/resourceName"
)

// NetworkAttachmentDefinition is the object type of the working group's
// client module (k8s.cni.cncf.io/v1), the one its typed clientset, informers
// and listers hand out. The alias lets callers of this package name it
// without importing the module; plexus reads its spec.config with Parse.
type NetworkAttachmentDefinition = nadv1.NetworkAttachmentDefinition

// Spec is the module's NAD spec: the CNI configuration as a JSON string.
type Spec = nadv1.NetworkAttachmentDefinitionSpec

// Delegate is one network's normalised CNI configuration.
type Delegate struct {
	// Name is the CNI network name (injected from the NAD when absent).
	Name string
	// CNIVersion is the configuration's cniVersion.
	CNIVersion string
	// Conflist is a complete CNI configuration list (single-plugin configs
	// are wrapped), with name and cniVersion set, IPAM and every unknown key
	// preserved. It is what gets cached on disk and handed to libcni.
	Conflist []byte
	// Types lists the plugin types in chain order.
	Types []string
	// Capabilities is the set of capabilities declared true by any plugin.
	Capabilities map[string]bool
	// Source says where the config came from: "ns/name" for a NAD, or a
	// file path.
	Source string
	// ResourceName is the NAD's k8s.v1.cni.cncf.io/resourceName: the
	// device-plugin (or DRA) resource whose devices back this network; ""
	// for a network without devices and for configuration files.
	ResourceName string
}
