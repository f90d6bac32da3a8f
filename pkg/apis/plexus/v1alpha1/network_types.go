package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ResourceNetworkDefinitions is the resource (plural) of NetworkDefinition.
const ResourceNetworkDefinitions = "networkdefinitions"

// KindNetworkDefinition is the kind of NetworkDefinition.
const KindNetworkDefinition = "NetworkDefinition"

// LabelNetworkDefinition marks a NetworkAttachmentDefinition rendered by
// plexus-controller; its value is the NetworkDefinition's metadata.name.
const LabelNetworkDefinition = "plexus.dev/network-definition"

// Network types of a NetworkDefinition (OpenShift's additionalNetworks
// types).
const (
	NetworkTypeRaw           = "Raw"
	NetworkTypeSimpleMacvlan = "SimpleMacvlan"
)

// Macvlan modes of SimpleMacvlan.
const (
	MacvlanModeBridge   = "Bridge"
	MacvlanModePrivate  = "Private"
	MacvlanModeVEPA     = "VEPA"
	MacvlanModePassthru = "Passthru"
)

// IPAM types of SimpleMacvlan. PlexusIPAM is plexus's addition.
const (
	IPAMTypeDHCP       = "DHCP"
	IPAMTypeStatic     = "Static"
	IPAMTypePlexusIPAM = "PlexusIPAM"
)

// Condition types in NetworkDefinitionStatus.
const (
	// ConditionRendered is True while the NAD matches the definition.
	ConditionRendered = "Rendered"
	// ConditionInvalid is True when the definition fails validation.
	ConditionInvalid = "Invalid"
)

// NetworkDefinition declares, cluster-wide, one network that
// plexus-controller renders into a NetworkAttachmentDefinition: one entry of
// OpenShift's Network.spec.additionalNetworks per object.
type NetworkDefinition struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              NetworkDefinitionSpec   `json:"spec"`
	Status            NetworkDefinitionStatus `json:"status,omitempty"`
}

// NetworkDefinitionSpec is OpenShift's AdditionalNetworkDefinition.
type NetworkDefinitionSpec struct {
	// Type is Raw or SimpleMacvlan.
	Type string `json:"type"`
	// Name is the NAD's name (required).
	Name string `json:"name"`
	// Namespace is the NAD's namespace ("" means "default").
	Namespace string `json:"namespace,omitempty"`
	// RawCNIConfig is copied verbatim into the NAD (type Raw).
	RawCNIConfig string `json:"rawCNIConfig,omitempty"`
	// SimpleMacvlanConfig configures a macvlan network (type SimpleMacvlan).
	SimpleMacvlanConfig *SimpleMacvlanConfig `json:"simpleMacvlanConfig,omitempty"`
}

// SimpleMacvlanConfig is a macvlan network's settings.
type SimpleMacvlanConfig struct {
	// Master is the host interface ("" leaves it to the plugin).
	Master string `json:"master,omitempty"`
	// Mode is Bridge, Private, VEPA or Passthru ("" leaves it to the plugin).
	Mode string `json:"mode,omitempty"`
	// MTU of the interface (0 leaves it to the kernel).
	MTU uint32 `json:"mtu,omitempty"`
	// IPAMConfig selects the addresses (nil means DHCP).
	IPAMConfig *IPAMConfig `json:"ipamConfig,omitempty"`
}

// IPAMConfig selects the IPAM plugin of a SimpleMacvlan network.
type IPAMConfig struct {
	// Type is DHCP, Static or PlexusIPAM.
	Type string `json:"type"`
	// StaticIPAMConfig configures type Static.
	StaticIPAMConfig *StaticIPAMConfig `json:"staticIPAMConfig,omitempty"`
	// PlexusIPAMConfig configures type PlexusIPAM.
	PlexusIPAMConfig *PlexusIPAMConfig `json:"plexusIPAMConfig,omitempty"`
}

// StaticIPAMConfig is the static IPAM plugin's configuration.
type StaticIPAMConfig struct {
	Addresses []StaticIPAMAddress `json:"addresses,omitempty"`
	Routes    []StaticIPAMRoute   `json:"routes,omitempty"`
	DNS       *StaticIPAMDNS      `json:"dns,omitempty"`
}

// StaticIPAMAddress is one address (CIDR) and its optional gateway.
type StaticIPAMAddress struct {
	Address string `json:"address"`
	Gateway string `json:"gateway,omitempty"`
}

// StaticIPAMRoute is one route: a destination CIDR and optional gateway.
type StaticIPAMRoute struct {
	Destination string `json:"destination"`
	Gateway     string `json:"gateway,omitempty"`
}

// StaticIPAMDNS is the DNS configuration handed to the pod.
type StaticIPAMDNS struct {
	Nameservers []string `json:"nameservers,omitempty"`
	Domain      string   `json:"domain,omitempty"`
	Search      []string `json:"search,omitempty"`
}

// PlexusIPAMConfig is plexus-ipam's cluster-wide allocation (Whereabouts
// keys).
type PlexusIPAMConfig struct {
	// Range is the CIDR (or "first-last/len") addresses come from.
	Range      string   `json:"range"`
	RangeStart string   `json:"range_start,omitempty"`
	RangeEnd   string   `json:"range_end,omitempty"`
	Exclude    []string `json:"exclude,omitempty"`
	Gateway    string   `json:"gateway,omitempty"`
	// NetworkName separates allocations of overlapping ranges.
	NetworkName string `json:"network_name,omitempty"`
}

// NetworkDefinitionStatus reports what the controller did.
type NetworkDefinitionStatus struct {
	// ObservedGeneration is the generation the conditions describe.
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// NetworkAttachmentDefinition is the rendered NAD, "namespace/name".
	NetworkAttachmentDefinition string `json:"networkAttachmentDefinition,omitempty"`
	// Conditions are Rendered and Invalid.
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// NetworkDefinitionList is a list of NetworkDefinitions.
type NetworkDefinitionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NetworkDefinition `json:"items"`
}
