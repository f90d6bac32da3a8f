// Package nad holds the NetworkAttachmentDefinition CRD, as applied by
// `kubectl apply -k deploy/crds/nad` and created by plexus-controller when
// it is missing.
package nad

import _ "embed"

// CRD is network-attachment-definitions.k8s.cni.cncf.io.yaml.
//
//go:embed network-attachment-definitions.k8s.cni.cncf.io.yaml
var CRD []byte

// Name is the CRD's metadata.name.
const Name = "network-attachment-definitions.k8s.cni.cncf.io"
