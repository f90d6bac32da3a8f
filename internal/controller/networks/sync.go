package networks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
	"github.com/plexus-cni/plexus/pkg/nad"
)

// errConflict reports that the target NAD exists and belongs to someone
// else; it is not retried (an event on that NAD or the definition brings
// the definition back).
var errConflict = errors.New("NetworkAttachmentDefinition exists and was not rendered from this NetworkDefinition")

// Sync brings the NADs of the definition named name in line with it.
func (r *Reconciler) Sync(ctx context.Context, name string) error {
	obj, exists, err := r.defs.GetIndexer().GetByKey(name)
	if err != nil {
		return fmt.Errorf("networkdefinition %s: reading cache: %w", name, err)
	}
	if !exists {
		return r.deleteOwned(ctx, name, "")
	}
	cached, ok := obj.(*v1.NetworkDefinition)
	if !ok {
		return fmt.Errorf("networkdefinition %s: cache holds a %T", name, obj)
	}
	def := cached.DeepCopy() // the cache's copy is shared: never modified
	for _, note := range notes(def) {
		r.log.Warn("deprecated spelling", "networkdefinition", name, "note", note)
	}
	st := &def.DeepCopy().Status
	st.ObservedGeneration = def.Generation
	rendered, err := Render(def.Spec)
	if err != nil {
		setConditions(st, def.Generation, false, "Invalid", err.Error(), true)
		return r.writeStatus(ctx, def, st)
	}
	target := rendered.Namespace + "/" + rendered.Name
	applyErr := r.apply(ctx, def, rendered)
	switch {
	case errors.Is(applyErr, errConflict):
		setConditions(st, def.Generation, false, "Conflict", fmt.Sprintf("%s: %v", target, applyErr), false)
		applyErr = nil
	case applyErr != nil:
		setConditions(st, def.Generation, false, "APIError", applyErr.Error(), false)
	default:
		st.NetworkAttachmentDefinition = target
		setConditions(st, def.Generation, true, "Rendered", "rendered into NetworkAttachmentDefinition "+target, false)
		applyErr = r.deleteOwned(ctx, name, target)
	}
	return errors.Join(applyErr, r.writeStatus(ctx, def, st))
}

// notes returns the canonicalization notes of a generation not seen yet
// (so that each is logged once).
func notes(def *v1.NetworkDefinition) []string {
	if def.Status.ObservedGeneration == def.Generation {
		return nil
	}
	return Canonicalize(def.Spec.DeepCopy())
}

// setConditions sets Rendered and Invalid.
func setConditions(st *v1.NetworkDefinitionStatus, gen int64, rendered bool, reason, msg string, invalid bool) {
	status := func(b bool) metav1.ConditionStatus {
		if b {
			return metav1.ConditionTrue
		}
		return metav1.ConditionFalse
	}
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: v1.ConditionRendered, Status: status(rendered),
		Reason: reason, Message: msg, ObservedGeneration: gen})
	inv := metav1.Condition{Type: v1.ConditionInvalid, Status: status(invalid), Reason: "Valid", ObservedGeneration: gen}
	if invalid {
		inv.Reason, inv.Message = "ValidationFailed", msg
	}
	meta.SetStatusCondition(&st.Conditions, inv)
}

// apply creates the rendered NAD, or puts it back as rendered when it was
// edited.
func (r *Reconciler) apply(ctx context.Context, def *v1.NetworkDefinition, want Rendered) error {
	client := r.nadCS.K8sCniCncfIoV1().NetworkAttachmentDefinitions(want.Namespace)
	cur, err := client.Get(ctx, want.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = client.Create(ctx, r.desired(def, want, nil), metav1.CreateOptions{FieldManager: "plexus-controller"})
		if err == nil {
			r.log.Info("created", "nad", want.Namespace+"/"+want.Name, "networkdefinition", def.Name)
		}
		return wrapNAD(err, "creating", want)
	}
	if err != nil {
		return wrapNAD(err, "reading", want)
	}
	if !owns(def, cur) {
		return errConflict
	}
	upd := r.desired(def, want, cur)
	if reflect.DeepEqual(upd, cur) {
		return nil
	}
	_, err = client.Update(ctx, upd, metav1.UpdateOptions{FieldManager: "plexus-controller"})
	if err == nil {
		r.log.Info("put back", "nad", want.Namespace+"/"+want.Name, "networkdefinition", def.Name)
	}
	return wrapNAD(err, "updating", want)
}

func wrapNAD(err error, verb string, r Rendered) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s NetworkAttachmentDefinition %s/%s: %w", verb, r.Namespace, r.Name, err)
}

// owns reports whether the NAD was rendered from def: it carries def's
// label or an owner reference to def.
func owns(def *v1.NetworkDefinition, u *nad.NetworkAttachmentDefinition) bool {
	if u.GetLabels()[v1.LabelNetworkDefinition] == def.Name {
		return true
	}
	for _, ref := range u.GetOwnerReferences() {
		if ref.UID == def.UID {
			return true
		}
	}
	return false
}

// desired returns cur (or a new NAD) with the rendered config, the label
// and the controller owner reference; other labels, annotations and owner
// references are kept.
func (r *Reconciler) desired(def *v1.NetworkDefinition, want Rendered, cur *nad.NetworkAttachmentDefinition) *nad.NetworkAttachmentDefinition {
	var u *nad.NetworkAttachmentDefinition
	if cur != nil {
		u = cur.DeepCopy()
	} else {
		u = &nad.NetworkAttachmentDefinition{}
		u.APIVersion = nad.Group + "/" + nad.Version
		u.Kind = nad.Kind
		u.Namespace = want.Namespace
		u.Name = want.Name
	}
	labels := u.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[v1.LabelNetworkDefinition] = def.Name
	u.SetLabels(labels)
	refs := []metav1.OwnerReference{ownerRef(def)}
	for _, ref := range u.GetOwnerReferences() {
		if ref.UID != def.UID && (ref.Controller == nil || !*ref.Controller) {
			refs = append(refs, ref)
		}
	}
	u.SetOwnerReferences(refs)
	u.Spec = nad.Spec{Config: want.Config}
	return u
}

func ownerRef(def *v1.NetworkDefinition) metav1.OwnerReference {
	yes := true
	return metav1.OwnerReference{APIVersion: v1.Group + "/" + v1.Version, Kind: v1.KindNetworkDefinition,
		Name: def.Name, UID: def.UID, Controller: &yes}
}

// deleteOwned deletes the NADs rendered from definition name, except keep
// ("namespace/name").
func (r *Reconciler) deleteOwned(ctx context.Context, name, keep string) error {
	owned, err := r.nads.GetIndexer().ByIndex("owner", name)
	if err != nil {
		return fmt.Errorf("networkdefinition %s: listing its NADs: %w", name, err)
	}
	var errs []error
	for _, obj := range owned {
		u := obj.(*nad.NetworkAttachmentDefinition)
		key := u.GetNamespace() + "/" + u.GetName()
		if key == keep {
			continue
		}
		bg := metav1.DeletePropagationBackground
		err := r.nadCS.K8sCniCncfIoV1().NetworkAttachmentDefinitions(u.GetNamespace()).Delete(ctx, u.GetName(),
			metav1.DeleteOptions{PropagationPolicy: &bg, Preconditions: &metav1.Preconditions{UID: ptr(u.GetUID())}})
		if err = ignoreNotFound(err); err != nil {
			errs = append(errs, fmt.Errorf("deleting NetworkAttachmentDefinition %s: %w", key, err))
			continue
		}
		r.log.Info("deleted", "nad", key, "networkdefinition", name)
	}
	return errors.Join(errs...)
}

// writeStatus writes st when it differs from def's status, as a merge
// patch of the status subresource (no resourceVersion: the controller is
// the status's only writer, and the cache may lag behind its last write).
func (r *Reconciler) writeStatus(ctx context.Context, def *v1.NetworkDefinition, st *v1.NetworkDefinitionStatus) error {
	if reflect.DeepEqual(&def.Status, st) {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"status": st})
	if err != nil {
		return fmt.Errorf("networkdefinition %s: encoding status: %w", def.Name, err)
	}
	_, err = r.plexus.PlexusV1alpha1().NetworkDefinitions().Patch(ctx, def.Name, types.MergePatchType, patch, metav1.PatchOptions{}, "status")
	if err != nil {
		return fmt.Errorf("networkdefinition %s: writing status: %w", def.Name, err)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
