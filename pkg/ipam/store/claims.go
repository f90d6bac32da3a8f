package store

import "context"

// Claim is an IPAMClaim (k8s.cni.cncf.io/v1alpha1, NPWG v1.3): the
// addresses of one attachment, which outlive the pods that name the claim.
type Claim struct {
	Namespace, Name string
	// Network and Interface are the attachment the claim is for (the CNI
	// network name and the pod interface).
	Network, Interface string
	// IPs are the claim's addresses once it has some (status.ips).
	IPs []string
}

// Claims reads IPAMClaims and records their addresses. A store that
// reaches the Kubernetes API offers it (ClaimsOf).
type Claims interface {
	// GetClaim returns the claim, or an error wrapping ErrNotFound.
	GetClaim(ctx context.Context, namespace, name string) (*Claim, error)
	// SetClaimIPs writes the claim's status.ips.
	SetClaimIPs(ctx context.Context, namespace, name string, ips []string) error
}

// ClaimsOf returns the Claims of s, or of the store s wraps (a wrapper
// offers its store with Unwrap).
func ClaimsOf(s Store) (Claims, bool) {
	for s != nil {
		if c, ok := s.(Claims); ok {
			return c, true
		}
		u, ok := s.(interface{ Unwrap() Store })
		if !ok {
			return nil, false
		}
		s = u.Unwrap()
	}
	return nil, false
}
