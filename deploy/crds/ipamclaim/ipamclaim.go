// Package ipamclaim holds the IPAMClaim CRD, as applied by `kubectl apply
// -k deploy/crds/ipamclaim` and created by plexus-controller when it is
// missing.
package ipamclaim

import _ "embed"

// CRD is ipamclaims.k8s.cni.cncf.io.yaml.
//
//go:embed ipamclaims.k8s.cni.cncf.io.yaml
var CRD []byte

// Name is the CRD's metadata.name.
const Name = "ipamclaims.k8s.cni.cncf.io"
