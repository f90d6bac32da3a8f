package kubestore

import (
	"context"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

var _ store.Claims = (*Store)(nil)

// claimPath is an IPAMClaim's path (the NPWG group, not plexus.dev's).
func claimPath(namespace, name string, sub ...string) string {
	p := "/apis/k8s.cni.cncf.io/v1alpha1/namespaces/" + namespace + "/ipamclaims/" + name
	for _, s := range sub {
		p += "/" + s
	}
	return p
}

type ipamClaim struct {
	Spec struct {
		Network   string `json:"network"`
		Interface string `json:"interface"`
	} `json:"spec"`
	Status struct {
		IPs []string `json:"ips"`
	} `json:"status"`
}

// GetClaim implements store.Claims.
func (s *Store) GetClaim(ctx context.Context, namespace, name string) (*store.Claim, error) {
	s.requests.Add(1)
	raw, err := s.rc.Get().AbsPath(claimPath(namespace, name)).Do(ctx).Raw()
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("IPAMClaim %s/%s: %w", namespace, name, store.ErrNotFound)
	}
	if err != nil {
		return nil, classify(err, "reading IPAMClaim "+namespace+"/"+name)
	}
	var c ipamClaim
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("IPAMClaim %s/%s: %w", namespace, name, err)
	}
	return &store.Claim{Namespace: namespace, Name: name, Network: c.Spec.Network, Interface: c.Spec.Interface, IPs: c.Status.IPs}, nil
}

// SetClaimIPs implements store.Claims.
func (s *Store) SetClaimIPs(ctx context.Context, namespace, name string, ips []string) error {
	s.requests.Add(1)
	body, err := json.Marshal(map[string]any{"status": map[string]any{"ips": ips}})
	if err != nil {
		return err
	}
	err = s.rc.Patch(types.MergePatchType).AbsPath(claimPath(namespace, name, "status")).Body(body).Do(ctx).Error()
	if err != nil {
		return classify(err, "writing status.ips of IPAMClaim "+namespace+"/"+name)
	}
	return nil
}
