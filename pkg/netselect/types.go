// Package netselect parses and validates the pod annotations that select
// secondary networks (k8s.v1.cni.cncf.io/networks) and replace the cluster
// network (v1.multus-cni.io/default-network), in both the comma and the JSON
// form of the NPWG multi-network specification. The plugin, the admission
// webhook and `plexusctl lint` all use this one parser.
//
// Differences from the specification text, all following the reference
// implementation (Multus) or fixing its known bugs:
//   - An invalid element rejects the whole annotation with an error (the
//     spec says the annotation is "invalid and ignored"; Multus fails the
//     pod, and so does plexus, so a typo never silently drops a network).
//   - The comma form accepts an "@ifname" suffix (Multus extension), and
//     names are DNS-1123 subdomains, so dotted NAD names work (Multus bug
//     B7). Empty items such as "net1," or "ns/" are errors (Multus bug B6).
//   - Unknown JSON keys are ignored; the deprecated key "interfaceRequest"
//     is an alias of "interface", and "deviceID" is accepted. Keys are
//     matched exactly (encoding/json would also accept "Name").
//   - "cni-args" numbers are kept as json.Number, so large integers pass
//     through to the delegate unchanged; an empty "cni-args" object is
//     treated as absent.
//   - Explicit interface names must be unique within one annotation, and
//     at most one element may carry "default-route" (both spec rules).
package netselect

import (
	"net"

	"github.com/plexus-cni/plexus/pkg/fielderr"
)

// Annotation keys read and written on pods.
const (
	NetworksAnnotation       = "k8s.v1.cni.cncf.io/networks"
	DefaultNetworkAnnotation = "v1.multus-cni.io/default-network"
	NetworkStatusAnnotation  = "k8s.v1.cni.cncf.io/network-status"
)

// Selection is one element of a networks annotation: one attachment request.
type Selection struct {
	// Namespace of the NetworkAttachmentDefinition; never empty after parsing.
	Namespace string `json:"namespace"`
	// Name of the NetworkAttachmentDefinition.
	Name string `json:"name"`
	// InterfaceName is the requested pod interface name ("" = generated netN).
	InterfaceName string `json:"interface,omitempty"`
	// IPs requested for the attachment (runtimeConfig "ips"), as written.
	IPs []string `json:"ips,omitempty"`
	// MAC requested for the attachment (runtimeConfig "mac").
	MAC string `json:"mac,omitempty"`
	// InfinibandGUID requested (runtimeConfig "infinibandGUID").
	InfinibandGUID string `json:"infiniband-guid,omitempty"`
	// CNIArgs are merged into the delegate config's args.cni.
	CNIArgs map[string]any `json:"cni-args,omitempty"`
	// PortMappings requested (runtimeConfig "portMappings").
	PortMappings []PortMapping `json:"portMappings,omitempty"`
	// Bandwidth requested (runtimeConfig "bandwidth").
	Bandwidth *Bandwidth `json:"bandwidth,omitempty"`
	// DefaultRoute lists gateways that make this attachment carry the pod's
	// default route. Non-nil (possibly empty) when the key was present.
	DefaultRoute []net.IP `json:"default-route,omitempty"`
	// DeviceID requested (runtimeConfig "deviceID"), Multus extension.
	DeviceID string `json:"deviceID,omitempty"`
	// IPAMClaimReference names an IPAMClaim (NPWG v1.3).
	IPAMClaimReference string `json:"ipam-claim-reference,omitempty"`
}

// PortMapping is one portMappings entry (CNI CONVENTIONS).
type PortMapping struct {
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol,omitempty"`
	HostIP        string `json:"hostIP,omitempty"`
}

// Bandwidth is the bandwidth runtimeConfig entry (bits/s and bits).
type Bandwidth struct {
	IngressRate  int64 `json:"ingressRate,omitempty"`
	IngressBurst int64 `json:"ingressBurst,omitempty"`
	EgressRate   int64 `json:"egressRate,omitempty"`
	EgressBurst  int64 `json:"egressBurst,omitempty"`
}

// FieldError is the error type returned for invalid annotation values.
type FieldError = fielderr.Error
