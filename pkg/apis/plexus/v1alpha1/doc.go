// Package v1alpha1 holds the plexus.dev/v1alpha1 API types: the ones
// plexus-ipam keeps in the Kubernetes API, IPAllocation (one per allocated
// address, the truth), IPAttachment (one per holder key, pointing at the
// address) and IPSpace (one per address space, the index of allocated
// addresses), and NetworkDefinition (an operator-declared network that
// plexus-controller renders into a NetworkAttachmentDefinition).
//
// These types, with their kubebuilder markers, are the source of truth:
// `make generate` (hack/generate.sh) derives from them the DeepCopy methods
// (zz_generated.deepcopy.go), the CRDs in deploy/crds and the typed client
// in pkg/client. See docs/development.md.
//
// +kubebuilder:object:generate=true
// +groupName=plexus.dev
package v1alpha1
