package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Group and version of the plexus API.
const (
	Group   = "plexus.dev"
	Version = "v1alpha1"
)

// Resource names (plurals) of the kinds.
const (
	ResourceIPAllocations = "ipallocations"
	ResourceIPAttachments = "ipattachments"
	ResourceIPSpaces      = "ipspaces"
)

// Labels on the objects, for server-side filtering. Values are the raw
// value when it is a valid label value, else "h-" and a hash.
const (
	LabelSpace   = "plexus.dev/space"   // store.SpaceID of the space
	LabelNode    = "plexus.dev/node"    // holder's node
	LabelNetwork = "plexus.dev/network" // holder's CNI network name
)

// AnnotationPreviousAddress on an IPAttachment names a second address its
// holder key may hold an IPAllocation of: the address a repeated ADD that
// requests another one is moving away from. DEL frees it too (if the key
// holds it). An annotation rather than a spec field, so that a plugin
// newer than the installed CRDs never has it pruned.
const AnnotationPreviousAddress = "plexus.dev/previous-address"

// AnnotationContention on an IPSpace carries how many allocation races were
// lost in the space lately (store.Heat, spelled by store.FormatHeat): every
// index write adds the writer's losses, and allocators that read a
// contended space start their search spread instead of all picking the
// lowest free address.
const AnnotationContention = "plexus.dev/contention"

// SchemeGroupVersion is the group and version of these types.
var SchemeGroupVersion = schema.GroupVersion{Group: Group, Version: Version}

// Resource qualifies a resource name (plural) of this group.
func Resource(resource string) schema.GroupResource {
	return SchemeGroupVersion.WithResource(resource).GroupResource()
}

// AddToScheme registers the types with s.
func AddToScheme(s *runtime.Scheme) error {
	gv := SchemeGroupVersion
	s.AddKnownTypes(gv, &IPAllocation{}, &IPAllocationList{}, &IPAttachment{}, &IPAttachmentList{}, &IPSpace{}, &IPSpaceList{},
		&NetworkDefinition{}, &NetworkDefinitionList{})
	metav1.AddToGroupVersion(s, gv)
	return nil
}

// IPAllocation is one allocated address of an address space and its holder
// (the truth; created only if absent). It is named "<space id>.<address>",
// so the API server guarantees one holder per address. Written by
// plexus-ipam (see docs/ipam.md); not meant to be edited by hand.
//
// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,shortName=ipalloc,categories=plexus
// +kubebuilder:printcolumn:name="Address",type=string,JSONPath=".spec.address"
// +kubebuilder:printcolumn:name="Pod",type=string,JSONPath=".spec.podName"
// +kubebuilder:printcolumn:name="Namespace",type=string,JSONPath=".spec.podNamespace"
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=".spec.node"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type IPAllocation struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// Spec is the address and who holds it.
	// +required
	Spec IPAllocationSpec `json:"spec"`
}

// IPAllocationSpec is the allocated address and its holder.
type IPAllocationSpec struct {
	// Space is the address-space key (network_name, plus the range CIDR
	// when overlapping ranges are disabled). Part of the object's name,
	// so it never changes.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="space is immutable (the object's name is derived from it)"
	Space string `json:"space"`
	// Address is the allocated IP address. Part of the object's name, so
	// it never changes.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="address is immutable (the object's name is derived from it)"
	Address string `json:"address"`
	// Slot is the index of the address in the holder's IPAM configuration.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Slot int `json:"slot"`
	// ContainerID is the CNI container ID of the holder.
	// +required
	ContainerID string `json:"containerID"`
	// IfName is the CNI interface name of the holder.
	// +required
	IfName string `json:"ifName"`
	// Network is the CNI network name (the configuration's name).
	// +optional
	Network string `json:"network,omitempty"`
	// PodNamespace is the namespace of the holder pod (K8S_POD_NAMESPACE).
	// +optional
	PodNamespace string `json:"podNamespace,omitempty"`
	// PodName is the name of the holder pod (K8S_POD_NAME).
	// +optional
	PodName string `json:"podName,omitempty"`
	// PodUID is the UID of the holder pod (K8S_POD_UID).
	// +optional
	PodUID string `json:"podUID,omitempty"`
	// Node is the node the holder runs on.
	// +optional
	Node string `json:"node,omitempty"`
	// Created is when the holder first got the address (for a
	// reservation: when it was made).
	// +optional
	Created metav1.Time `json:"created"`
	// Sticky: the address outlives the pod; a pod that goes away leaves a
	// reservation for its namespace and name (plexus-ipam "sticky").
	// +optional
	Sticky bool `json:"sticky,omitempty"`
	// Claim: the IPAMClaim (in podNamespace) the address belongs to; it
	// outlives every pod that holds it until the claim is deleted.
	// +optional
	Claim string `json:"claim,omitempty"`
}

// IPAllocationList is a list of IPAllocations.
//
// +kubebuilder:object:root=true
type IPAllocationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPAllocation `json:"items"`
}

// IPAttachment maps a CNI attachment (space, containerID, ifname, slot) to
// its address, so that ADD and DEL find the allocation without listing. It
// is named by a hash of that key. Written by plexus-ipam (see
// docs/ipam.md); not meant to be edited by hand.
//
// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,shortName=ipattach,categories=plexus
// +kubebuilder:printcolumn:name="Address",type=string,JSONPath=".spec.address"
// +kubebuilder:printcolumn:name="Container",type=string,JSONPath=".spec.containerID"
// +kubebuilder:printcolumn:name="Interface",type=string,JSONPath=".spec.ifName"
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=".spec.node"
type IPAttachment struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// Spec is the holder key and its address.
	// +required
	Spec IPAttachmentSpec `json:"spec"`
}

// IPAttachmentSpec is the holder key and the address it holds (or is
// about to claim). The key (space, containerID, ifName, slot) is hashed
// into the object's name, so it never changes; the address does.
type IPAttachmentSpec struct {
	// Space is the address-space key.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="space is immutable (the object's name is derived from it)"
	Space string `json:"space"`
	// ContainerID is the CNI container ID.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="containerID is immutable (the object's name is derived from it)"
	ContainerID string `json:"containerID"`
	// IfName is the CNI interface name.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="ifName is immutable (the object's name is derived from it)"
	IfName string `json:"ifName"`
	// Slot is the index of the address in the IPAM configuration.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="slot is immutable (the object's name is derived from it)"
	Slot int `json:"slot"`
	// Address is the address this attachment holds (or is claiming).
	// +required
	Address string `json:"address"`
	// Network is the CNI network name.
	// +optional
	Network string `json:"network,omitempty"`
	// Node is the node of the attachment.
	// +optional
	Node string `json:"node,omitempty"`
}

// IPAttachmentList is a list of IPAttachments.
//
// +kubebuilder:object:root=true
type IPAttachmentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPAttachment `json:"items"`
}

// IPSpace is the index of one address space: its allocated addresses as
// compact runs, used to find the lowest free address without listing. It
// is a hint: written with resourceVersion checks by the allocators (a
// write that loses a race is dropped, not retried at length), and rebuilt
// from the IPAllocations when found stale. Written by plexus-ipam (see
// docs/ipam.md); not meant to be edited by hand.
//
// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,shortName=ipspace,categories=plexus
// +kubebuilder:printcolumn:name="Space",type=string,JSONPath=".spec.space"
// +kubebuilder:printcolumn:name="Allocated",type=integer,JSONPath=".spec.allocated"
type IPSpace struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	// Spec is the space key and its index.
	// +required
	Spec IPSpaceSpec `json:"spec"`
}

// IPSpaceSpec is the space key and its index.
type IPSpaceSpec struct {
	// Space is the address-space key. Part of the object's name, so it
	// never changes.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="space is immutable (the object's name is derived from it)"
	Space string `json:"space"`
	// Index is the alloc.Set encoding of the allocated addresses (a hint,
	// rebuilt from the IPAllocations when stale).
	// +optional
	Index []byte `json:"index,omitempty"`
	// Allocated is the number of addresses the index marks allocated (for
	// display).
	// +optional
	// +kubebuilder:validation:Minimum=0
	Allocated int64 `json:"allocated"`
}

// IPSpaceList is a list of IPSpaces.
//
// +kubebuilder:object:root=true
type IPSpaceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPSpace `json:"items"`
}
