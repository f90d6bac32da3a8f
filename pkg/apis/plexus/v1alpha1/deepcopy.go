package v1alpha1

import "k8s.io/apimachinery/pkg/runtime"

// DeepCopyInto copies in into out.
func (in *IPAllocation) DeepCopyInto(out *IPAllocation) {
	*out = *in
	out.TypeMeta = in.TypeMeta
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	in.Spec.Created.DeepCopyInto(&out.Spec.Created)
}

// DeepCopy returns a copy of in.
func (in *IPAllocation) DeepCopy() *IPAllocation {
	if in == nil {
		return nil
	}
	out := new(IPAllocation)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *IPAllocation) DeepCopyObject() runtime.Object { return in.DeepCopy() }

// DeepCopyObject implements runtime.Object.
func (in *IPAllocationList) DeepCopyObject() runtime.Object {
	if in == nil {
		return nil
	}
	out := &IPAllocationList{TypeMeta: in.TypeMeta}
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	out.Items = make([]IPAllocation, len(in.Items))
	for i := range in.Items {
		in.Items[i].DeepCopyInto(&out.Items[i])
	}
	return out
}

// DeepCopyInto copies in into out.
func (in *IPAttachment) DeepCopyInto(out *IPAttachment) {
	*out = *in
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
}

// DeepCopy returns a copy of in.
func (in *IPAttachment) DeepCopy() *IPAttachment {
	if in == nil {
		return nil
	}
	out := new(IPAttachment)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *IPAttachment) DeepCopyObject() runtime.Object { return in.DeepCopy() }

// DeepCopyObject implements runtime.Object.
func (in *IPAttachmentList) DeepCopyObject() runtime.Object {
	if in == nil {
		return nil
	}
	out := &IPAttachmentList{TypeMeta: in.TypeMeta}
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	out.Items = make([]IPAttachment, len(in.Items))
	for i := range in.Items {
		in.Items[i].DeepCopyInto(&out.Items[i])
	}
	return out
}

// DeepCopyInto copies in into out.
func (in *IPSpace) DeepCopyInto(out *IPSpace) {
	*out = *in
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	out.Spec.Index = append([]byte(nil), in.Spec.Index...)
}

// DeepCopy returns a copy of in.
func (in *IPSpace) DeepCopy() *IPSpace {
	if in == nil {
		return nil
	}
	out := new(IPSpace)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *IPSpace) DeepCopyObject() runtime.Object { return in.DeepCopy() }

// DeepCopyObject implements runtime.Object.
func (in *IPSpaceList) DeepCopyObject() runtime.Object {
	if in == nil {
		return nil
	}
	out := &IPSpaceList{TypeMeta: in.TypeMeta}
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	out.Items = make([]IPSpace, len(in.Items))
	for i := range in.Items {
		in.Items[i].DeepCopyInto(&out.Items[i])
	}
	return out
}
