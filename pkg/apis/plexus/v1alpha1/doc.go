// Package v1alpha1 holds the plexus.dev/v1alpha1 API types plexus-ipam
// keeps in the Kubernetes API: IPAllocation (one per allocated address,
// the truth), IPAttachment (one per holder key, pointing at the address)
// and IPSpace (one per address space, the index of allocated addresses).
// DeepCopy methods are hand-written; the CRDs are in deploy/crds.
//
// +groupName=plexus.dev
package v1alpha1
