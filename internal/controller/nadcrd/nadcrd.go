// Package nadcrd makes sure the NPWG's shared CRDs exist, the
// NetworkAttachmentDefinition's and the IPAMClaim's: plexus-controller
// creates each when it is missing, and never updates or deletes it. They
// are shared with Multus and OVN-Kubernetes, so deploy/ does not carry them
// (`kubectl delete -k deploy/` must never delete one, and every object of
// its kind with it); creating them here keeps `kubectl apply -k deploy/` a
// whole install.
package nadcrd

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/plexus-cni/plexus/deploy/crds/ipamclaim"
	"github.com/plexus-cni/plexus/deploy/crds/nad"
	"github.com/plexus-cni/plexus/internal/controller"
)

// GVR is the resource of CustomResourceDefinitions.
var GVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// Component creates the CRD once, retrying until it exists.
type Component struct {
	dyn   dynamic.Interface
	log   *slog.Logger
	retry time.Duration
}

var _ controller.Component = (*Component)(nil)

// New returns the component.
func New(d controller.Deps) *Component {
	return &Component{dyn: d.Dynamic, log: d.Log.With("component", "nad-crd"), retry: 5 * time.Second}
}

// Name implements controller.Component.
func (c *Component) Name() string { return "nad-crd" }

// LeaderOnly implements controller.Component: creating is idempotent, and
// the webhook of every replica reads NADs.
func (c *Component) LeaderOnly() bool { return false }

// Run creates each CRD when it is missing, then returns.
func (c *Component) Run(ctx context.Context) error {
	for _, src := range [][]byte{nad.CRD, ipamclaim.CRD} {
		obj, err := decode(src)
		if err != nil {
			return err
		}
		err = wait.PollUntilContextCancel(ctx, c.retry, true, func(ctx context.Context) (bool, error) {
			created, err := Ensure(ctx, c.dyn, obj)
			switch {
			case err != nil:
				c.log.Warn("cannot create a shared CRD; retrying", "crd", obj.GetName(), "error", err)
				return false, nil
			case created:
				c.log.Info("created a shared CRD (it was missing)", "crd", obj.GetName())
			default:
				c.log.Debug("the shared CRD exists", "crd", obj.GetName())
			}
			return true, nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Object decodes the embedded NetworkAttachmentDefinition CRD.
func Object() (*unstructured.Unstructured, error) { return decode(nad.CRD) }

// ClaimObject decodes the embedded IPAMClaim CRD.
func ClaimObject() (*unstructured.Unstructured, error) { return decode(ipamclaim.CRD) }

func decode(src []byte) (*unstructured.Unstructured, error) {
	js, err := yaml.YAMLToJSON(src)
	if err != nil {
		return nil, fmt.Errorf("embedded CRD: %w", err)
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(js); err != nil {
		return nil, fmt.Errorf("embedded CRD: %w", err)
	}
	return obj, nil
}

// Ensure creates obj unless it exists; an existing CRD is left as it is
// (Multus's, an older or newer one: never overwritten).
func Ensure(ctx context.Context, dyn dynamic.Interface, obj *unstructured.Unstructured) (created bool, err error) {
	_, err = dyn.Resource(GVR).Create(ctx, obj, metav1.CreateOptions{FieldManager: "plexus-controller"})
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsAlreadyExists(err):
		return false, nil
	}
	return false, fmt.Errorf("create CRD %s: %w", obj.GetName(), err)
}
