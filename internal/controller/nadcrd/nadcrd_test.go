package nadcrd

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynfake "k8s.io/client-go/dynamic/fake"

	"github.com/plexus-cni/plexus/deploy/crds/nad"
)

// Created when missing, left alone when present (someone else's CRD is
// never overwritten).
func TestEnsure(t *testing.T) {
	obj, err := Object()
	if err != nil {
		t.Fatal(err)
	}
	if obj.GetName() != nad.Name || obj.GetKind() != "CustomResourceDefinition" {
		t.Fatalf("embedded CRD is %s %s", obj.GetKind(), obj.GetName())
	}
	dyn := dynfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{GVR: "CustomResourceDefinitionList"})
	ctx := context.Background()
	if created, err := Ensure(ctx, dyn, obj); !created || err != nil {
		t.Fatalf("Ensure on an empty cluster: created %v, %v", created, err)
	}
	theirs := obj.DeepCopy()
	_ = unstructured.SetNestedField(theirs.Object, "theirs", "metadata", "labels", "owner")
	if created, err := Ensure(ctx, dyn, theirs); created || err != nil {
		t.Fatalf("Ensure when it exists: created %v, %v", created, err)
	}
	got, err := dyn.Resource(GVR).Get(ctx, nad.Name, metav1.GetOptions{})
	if err != nil || got.GetLabels()["owner"] == "theirs" {
		t.Errorf("the existing CRD was changed (%v): %v", err, got.GetLabels())
	}
}
