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

// NetworkDefinition is an operator-declared network, which
// plexus-controller renders into a NetworkAttachmentDefinition in
// spec.namespace (see docs/operator.md): one entry of OpenShift's
// Network.spec.additionalNetworks per object.
//
// +genclient
// +genclient:nonNamespaced
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=netdef,categories=plexus
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=".spec.type"
// +kubebuilder:printcolumn:name="NAD",type=string,JSONPath=".status.networkAttachmentDefinition"
// +kubebuilder:printcolumn:name="Rendered",type=string,JSONPath=".status.conditions[?(@.type==\"Rendered\")].status"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type NetworkDefinition struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// +required
	Spec NetworkDefinitionSpec `json:"spec"`
	// +optional
	Status NetworkDefinitionStatus `json:"status,omitempty"`
}

// NetworkDefinitionSpec is OpenShift's AdditionalNetworkDefinition. Values
// are validated by plexus-controller (and the admission webhook) with the
// Cluster Network Operator's rules and messages: an invalid definition is
// stored, and reported in the Invalid condition. The schema checks only
// what the fields' types demand.
type NetworkDefinitionSpec struct {
	// Type is Raw or SimpleMacvlan (legacy lower-case spellings are
	// accepted and canonicalized).
	// +optional
	Type string `json:"type"`
	// Name is the name of the NetworkAttachmentDefinition (required).
	// +optional
	Name string `json:"name"`
	// Namespace is the namespace of the NetworkAttachmentDefinition; empty
	// means "default".
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// RawCNIConfig is CNI configuration JSON copied verbatim into the NAD
	// (type Raw).
	// +optional
	RawCNIConfig string `json:"rawCNIConfig,omitempty"`
	// SimpleMacvlanConfig configures a macvlan network (type SimpleMacvlan).
	// +optional
	SimpleMacvlanConfig *SimpleMacvlanConfig `json:"simpleMacvlanConfig,omitempty"`
}

// SimpleMacvlanConfig is a macvlan network's settings.
type SimpleMacvlanConfig struct {
	// Master is the host interface; empty leaves the choice to the macvlan
	// plugin (the default-route interface).
	// +optional
	Master string `json:"master,omitempty"`
	// Mode is Bridge, Private, VEPA or Passthru; empty leaves the plugin's
	// default (bridge).
	// +optional
	Mode string `json:"mode,omitempty"`
	// MTU of the interface; 0 or unset leaves it to the kernel.
	// +optional
	// +kubebuilder:validation:Format=int64
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	MTU uint32 `json:"mtu,omitempty"`
	// IPAMConfig is the address assignment; unset means DHCP.
	// +optional
	IPAMConfig *IPAMConfig `json:"ipamConfig,omitempty"`
}

// IPAMConfig selects the IPAM plugin of a SimpleMacvlan network.
type IPAMConfig struct {
	// Type is DHCP, Static or PlexusIPAM.
	// +optional
	Type string `json:"type"`
	// StaticIPAMConfig configures type Static.
	// +optional
	StaticIPAMConfig *StaticIPAMConfig `json:"staticIPAMConfig,omitempty"`
	// PlexusIPAMConfig is a cluster-wide allocation by plexus-ipam (type
	// PlexusIPAM); Whereabouts keys.
	// +optional
	PlexusIPAMConfig *PlexusIPAMConfig `json:"plexusIPAMConfig,omitempty"`
}

// StaticIPAMConfig is the static IPAM plugin's configuration.
type StaticIPAMConfig struct {
	// Addresses are the interface's addresses.
	// +optional
	Addresses []StaticIPAMAddress `json:"addresses,omitempty"`
	// Routes are the routes added in the pod.
	// +optional
	Routes []StaticIPAMRoute `json:"routes,omitempty"`
	// DNS is the DNS configuration handed to the pod.
	// +optional
	DNS *StaticIPAMDNS `json:"dns,omitempty"`
}

// StaticIPAMAddress is one address (CIDR) and its optional gateway.
type StaticIPAMAddress struct {
	// Address is the address in CIDR form.
	// +optional
	Address string `json:"address"`
	// +optional
	Gateway string `json:"gateway,omitempty"`
}

// StaticIPAMRoute is one route: a destination CIDR and optional gateway.
type StaticIPAMRoute struct {
	// Destination is the destination in CIDR form.
	// +optional
	Destination string `json:"destination"`
	// +optional
	Gateway string `json:"gateway,omitempty"`
}

// StaticIPAMDNS is the DNS configuration handed to the pod.
type StaticIPAMDNS struct {
	// +optional
	Nameservers []string `json:"nameservers,omitempty"`
	// +optional
	Domain string `json:"domain,omitempty"`
	// +optional
	Search []string `json:"search,omitempty"`
}

// PlexusIPAMConfig is plexus-ipam's cluster-wide allocation (Whereabouts
// keys).
type PlexusIPAMConfig struct {
	// Range is the CIDR (or "first-last/len") addresses come from.
	// +optional
	Range string `json:"range"`
	// +optional
	RangeStart string `json:"range_start,omitempty"`
	// +optional
	RangeEnd string `json:"range_end,omitempty"`
	// +optional
	Exclude []string `json:"exclude,omitempty"`
	// +optional
	Gateway string `json:"gateway,omitempty"`
	// NetworkName separates allocations of overlapping ranges.
	// +optional
	NetworkName string `json:"network_name,omitempty"`
}

// NetworkDefinitionStatus reports what the controller did.
type NetworkDefinitionStatus struct {
	// ObservedGeneration is the generation the conditions describe.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// NetworkAttachmentDefinition is the rendered NAD, "namespace/name".
	// +optional
	NetworkAttachmentDefinition string `json:"networkAttachmentDefinition,omitempty"`
	// Conditions are Rendered and Invalid.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// NetworkDefinitionList is a list of NetworkDefinitions.
//
// +kubebuilder:object:root=true
type NetworkDefinitionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NetworkDefinition `json:"items"`
}
