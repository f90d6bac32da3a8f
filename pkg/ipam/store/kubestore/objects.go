package kubestore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

// allocationName names the IPAllocation of addr in space.
func allocationName(space string, addr netip.Addr) string {
	return store.SpaceID(space) + "." + store.AddrID(addr)
}

// attachmentName names the IPAttachment of a holder key.
func attachmentName(k store.Key) string { return "h" + store.HolderID(k) }

// spaceName names the IPSpace of a space.
func spaceName(space string) string { return "s" + store.SpaceID(space) }

// labelValue returns v when it is a valid label value, else a hash of it.
func labelValue(v string) string {
	if len(validation.IsValidLabelValue(v)) == 0 {
		return v
	}
	sum := sha256.Sum256([]byte(v))
	return "h-" + hex.EncodeToString(sum[:12])
}

func holderLabels(space, network, node string) map[string]string {
	return map[string]string{v1.LabelSpace: store.SpaceID(space), v1.LabelNetwork: labelValue(network), v1.LabelNode: labelValue(node)}
}

func toAllocationObject(a store.Allocation) *v1.IPAllocation {
	return &v1.IPAllocation{
		ObjectMeta: metav1.ObjectMeta{Name: allocationName(a.Space, a.Address), Labels: holderLabels(a.Space, a.Network, a.Node)},
		Spec: v1.IPAllocationSpec{
			Space: a.Space, Address: a.Address.String(), Slot: a.Slot, ContainerID: a.ContainerID, IfName: a.IfName,
			Network: a.Network, PodNamespace: a.PodNamespace, PodName: a.PodName, PodUID: a.PodUID, Node: a.Node,
			Created: metav1.NewTime(a.Created), Sticky: a.Sticky, Claim: a.Claim,
		},
	}
}

// AllocationOf returns the allocation an IPAllocation object records, for
// readers that keep the objects themselves (plexus-controller's informer).
func AllocationOf(o *v1.IPAllocation) (store.Allocation, error) { return fromAllocationObject(o) }

func fromAllocationObject(o *v1.IPAllocation) (store.Allocation, error) {
	addr, err := netip.ParseAddr(o.Spec.Address)
	if err != nil {
		return store.Allocation{}, fmt.Errorf("ipallocation %s: spec.address %q: %w", o.Name, o.Spec.Address, err)
	}
	sp := o.Spec
	return store.Allocation{Space: sp.Space, Slot: sp.Slot, Address: addr, Holder: store.Holder{
		ContainerID: sp.ContainerID, IfName: sp.IfName, Network: sp.Network, PodNamespace: sp.PodNamespace,
		PodName: sp.PodName, PodUID: sp.PodUID, Node: sp.Node, Created: sp.Created.UTC(), Sticky: sp.Sticky, Claim: sp.Claim,
	}}, nil
}

// toAttachmentObject builds k's IPAttachment naming addr and, when valid,
// previous (v1.AnnotationPreviousAddress).
func toAttachmentObject(k store.Key, h store.Holder, addr, previous netip.Addr) *v1.IPAttachment {
	o := &v1.IPAttachment{
		ObjectMeta: metav1.ObjectMeta{Name: attachmentName(k), Labels: holderLabels(k.Space, h.Network, h.Node)},
		Spec: v1.IPAttachmentSpec{Space: k.Space, ContainerID: k.ContainerID, IfName: k.IfName, Slot: k.Slot,
			Address: addr.String(), Network: h.Network, Node: h.Node},
	}
	if previous.IsValid() && previous != addr {
		o.Annotations = map[string]string{v1.AnnotationPreviousAddress: previous.String()}
	}
	return o
}

// attachmentAddrs returns the addresses an IPAttachment names: its
// address, then the previous one (unparsable values are skipped).
func attachmentAddrs(o *v1.IPAttachment) []netip.Addr {
	var out []netip.Addr
	if a, err := netip.ParseAddr(o.Spec.Address); err == nil {
		out = append(out, a)
	}
	if p, err := netip.ParseAddr(o.Annotations[v1.AnnotationPreviousAddress]); err == nil && (len(out) == 0 || p != out[0]) {
		out = append(out, p)
	}
	return out
}

// The REST calls; each returns the API error unclassified.

func (s *Store) get(ctx context.Context, resource, name string, into runtime.Object) error {
	s.requests.Add(1)
	return s.rc.Get().Namespace(s.ns).Resource(resource).Name(name).Do(ctx).Into(into)
}

func (s *Store) create(ctx context.Context, resource string, obj, into runtime.Object) error {
	s.requests.Add(1)
	return s.rc.Post().Namespace(s.ns).Resource(resource).Body(obj).Do(ctx).Into(into)
}

func (s *Store) update(ctx context.Context, resource, name string, obj, into runtime.Object) error {
	s.requests.Add(1)
	return s.rc.Put().Namespace(s.ns).Resource(resource).Name(name).Body(obj).Do(ctx).Into(into)
}

// remove deletes name if its UID and resourceVersion still match.
func (s *Store) remove(ctx context.Context, resource, name string, uid types.UID, rv string) error {
	s.requests.Add(1)
	opts := &metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}}
	return s.rc.Delete().Namespace(s.ns).Resource(resource).Name(name).Body(opts).Do(ctx).Error()
}

// list pages through resource with a label selector into each page.
func (s *Store) list(ctx context.Context, resource, selector string, newPage func() runtime.Object, each func(runtime.Object) error) error {
	opts := metav1.ListOptions{LabelSelector: selector, Limit: 5000}
	for {
		page := newPage()
		s.requests.Add(1)
		err := s.rc.Get().Namespace(s.ns).Resource(resource).VersionedParams(&opts, metav1.ParameterCodec).Do(ctx).Into(page)
		if err != nil {
			return err
		}
		if err := each(page); err != nil {
			return err
		}
		lm, ok := page.(metav1.ListMetaAccessor)
		if !ok || lm.GetListMeta().GetContinue() == "" {
			return nil
		}
		opts.Continue = lm.GetListMeta().GetContinue()
	}
}
