package v1alpha1

import (
	"slices"

	"k8s.io/apimachinery/pkg/runtime"
)

// DeepCopyInto copies in into out.
func (in *NetworkDefinition) DeepCopyInto(out *NetworkDefinition) {
	*out = *in
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	in.Spec.DeepCopyInto(&out.Spec)
	out.Status.Conditions = slices.Clone(in.Status.Conditions)
}

// DeepCopy returns a copy of in.
func (in *NetworkDefinition) DeepCopy() *NetworkDefinition {
	if in == nil {
		return nil
	}
	out := new(NetworkDefinition)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *NetworkDefinition) DeepCopyObject() runtime.Object { return in.DeepCopy() }

// DeepCopyObject implements runtime.Object.
func (in *NetworkDefinitionList) DeepCopyObject() runtime.Object {
	if in == nil {
		return nil
	}
	out := &NetworkDefinitionList{TypeMeta: in.TypeMeta}
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	out.Items = make([]NetworkDefinition, len(in.Items))
	for i := range in.Items {
		in.Items[i].DeepCopyInto(&out.Items[i])
	}
	return out
}

// DeepCopyInto copies in into out.
func (in *NetworkDefinitionSpec) DeepCopyInto(out *NetworkDefinitionSpec) {
	*out = *in
	if in.SimpleMacvlanConfig == nil {
		return
	}
	m := *in.SimpleMacvlanConfig
	out.SimpleMacvlanConfig = &m
	if in.SimpleMacvlanConfig.IPAMConfig == nil {
		return
	}
	ipam := *in.SimpleMacvlanConfig.IPAMConfig
	m.IPAMConfig = &ipam
	if s := ipam.StaticIPAMConfig; s != nil {
		c := StaticIPAMConfig{Addresses: slices.Clone(s.Addresses), Routes: slices.Clone(s.Routes)}
		if s.DNS != nil {
			c.DNS = &StaticIPAMDNS{Nameservers: slices.Clone(s.DNS.Nameservers), Domain: s.DNS.Domain, Search: slices.Clone(s.DNS.Search)}
		}
		ipam.StaticIPAMConfig = &c
	}
	if p := ipam.PlexusIPAMConfig; p != nil {
		c := *p
		c.Exclude = slices.Clone(p.Exclude)
		ipam.PlexusIPAMConfig = &c
	}
}

// DeepCopy returns a copy of in.
func (in *NetworkDefinitionSpec) DeepCopy() *NetworkDefinitionSpec {
	if in == nil {
		return nil
	}
	out := new(NetworkDefinitionSpec)
	in.DeepCopyInto(out)
	return out
}
