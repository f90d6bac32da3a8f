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
func SchemeGroupVersion() schema.GroupVersion {
	return schema.GroupVersion{Group: Group, Version: Version}
}

// AddToScheme registers the types with s.
func AddToScheme(s *runtime.Scheme) error {
	gv := SchemeGroupVersion()
	s.AddKnownTypes(gv, &IPAllocation{}, &IPAllocationList{}, &IPAttachment{}, &IPAttachmentList{}, &IPSpace{}, &IPSpaceList{})
	metav1.AddToGroupVersion(s, gv)
	return nil
}

// IPAllocation records that one address of a space is allocated, and to
// whom. It is named "<space id>.<address>" and created only if absent, so
// the API server guarantees one holder per address.
type IPAllocation struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              IPAllocationSpec `json:"spec"`
}

// IPAllocationSpec is the allocated address and its holder.
type IPAllocationSpec struct {
	// Space is the address-space key (network_name, and the range CIDR
	// when overlapping ranges are disabled).
	Space string `json:"space"`
	// Address is the allocated IP address.
	Address string `json:"address"`
	// Slot is the index of the address in the holder's configuration.
	Slot int `json:"slot"`
	// ContainerID and IfName identify the CNI attachment.
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifName"`
	// Network is the CNI network name.
	Network      string `json:"network,omitempty"`
	PodNamespace string `json:"podNamespace,omitempty"`
	PodName      string `json:"podName,omitempty"`
	PodUID       string `json:"podUID,omitempty"`
	Node         string `json:"node,omitempty"`
	// Created is when the holder first got the address (for a
	// reservation: when it was made).
	Created metav1.Time `json:"created"`
	// Sticky: the address outlives the pod; a pod that goes away leaves a
	// reservation for its namespace and name (plexus-ipam "sticky").
	Sticky bool `json:"sticky,omitempty"`
}

// IPAllocationList is a list of IPAllocations.
type IPAllocationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPAllocation `json:"items"`
}

// IPAttachment maps a holder key (space, containerID, ifname, slot) to its
// address, so that ADD and DEL find the allocation without listing. It is
// named by a hash of the key.
type IPAttachment struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              IPAttachmentSpec `json:"spec"`
}

// IPAttachmentSpec is the holder key and the address it holds (or is
// about to claim).
type IPAttachmentSpec struct {
	Space       string `json:"space"`
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifName"`
	Slot        int    `json:"slot"`
	Address     string `json:"address"`
	Network     string `json:"network,omitempty"`
	Node        string `json:"node,omitempty"`
}

// IPAttachmentList is a list of IPAttachments.
type IPAttachmentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPAttachment `json:"items"`
}

// IPSpace holds the index of one address space: the allocated addresses as
// compact runs. It is a hint: written with resourceVersion checks by the
// allocators (a write that loses a race is dropped, not retried at
// length), and rebuilt from the IPAllocations when found stale.
type IPSpace struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              IPSpaceSpec `json:"spec"`
}

// IPSpaceSpec is the space key and its index.
type IPSpaceSpec struct {
	Space string `json:"space"`
	// Index is the alloc.Set encoding of the allocated addresses.
	Index []byte `json:"index,omitempty"`
	// Allocated is the number of addresses in Index (for display).
	Allocated int64 `json:"allocated"`
}

// IPSpaceList is a list of IPSpaces.
type IPSpaceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPSpace `json:"items"`
}
