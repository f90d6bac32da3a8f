package testbed

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"
)

const fieldManager = "plexus-testbed"

// NADResource returns the resource of NetworkAttachmentDefinitions.
func NADResource() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "k8s.cni.cncf.io", Version: "v1", Resource: "network-attachment-definitions"}
}

// NewNAD returns a NetworkAttachmentDefinition object; an empty config
// leaves out spec.
func NewNAD(ns, name, config string) *unstructured.Unstructured {
	obj := map[string]any{
		"apiVersion": "k8s.cni.cncf.io/v1",
		"kind":       "NetworkAttachmentDefinition",
		"metadata":   map[string]any{"name": name, "namespace": ns},
	}
	if config != "" {
		obj["spec"] = map[string]any{"config": config}
	}
	return &unstructured.Unstructured{Object: obj}
}

// CreateNAD creates a NetworkAttachmentDefinition ns/name with spec.config
// set to config (spec is left out when config is empty).
func (e *Env) CreateNAD(t testing.TB, ns, name, config string) {
	t.Helper()
	_, err := e.Dynamic.Resource(NADResource()).Namespace(ns).Create(t.Context(), NewNAD(ns, name, config), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating NAD %s/%s: %v", ns, name, err)
	}
}

// DeleteNAD deletes the NetworkAttachmentDefinition ns/name.
func (e *Env) DeleteNAD(t testing.TB, ns, name string) {
	t.Helper()
	if err := e.Dynamic.Resource(NADResource()).Namespace(ns).Delete(t.Context(), name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting NAD %s/%s: %v", ns, name, err)
	}
}

// ApplyYAML server-side applies every object of a multi-document YAML
// (NADs, pods, any kind the API server knows). Namespaced objects without a
// namespace go to defaultNS. The objects are deleted when the test ends.
// It returns the objects as the API server stored them.
func (e *Env) ApplyYAML(t testing.TB, defaultNS, docs string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := decodeYAML(docs)
	if err != nil {
		t.Fatalf("ApplyYAML: %v", err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(e.Client.Discovery()))
	applied := make([]*unstructured.Unstructured, 0, len(objs))
	for _, obj := range objs {
		ri, err := resourceFor(mapper, e.Dynamic, obj, defaultNS)
		if err != nil {
			t.Fatalf("ApplyYAML: %v", err)
		}
		out, err := ri.Apply(t.Context(), obj.GetName(), obj, metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
		if err != nil {
			t.Fatalf("ApplyYAML: applying %s %q: %v", obj.GetKind(), obj.GetName(), err)
		}
		t.Cleanup(func() { deleteIgnoringNotFound(t, ri, out.GetName()) })
		applied = append(applied, out)
	}
	return applied
}

// resourceFor maps obj to its resource client, defaulting its namespace.
func resourceFor(mapper meta.RESTMapper, dyn dynamic.Interface, obj *unstructured.Unstructured, defaultNS string) (dynamic.ResourceInterface, error) {
	gvk := obj.GroupVersionKind()
	mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("kind %q of %q: %w", gvk.String(), obj.GetName(), err)
	}
	if mapping.Scope.Name() != meta.RESTScopeNameNamespace {
		return dyn.Resource(mapping.Resource), nil
	}
	if obj.GetNamespace() == "" {
		obj.SetNamespace(defaultNS)
	}
	return dyn.Resource(mapping.Resource).Namespace(obj.GetNamespace()), nil
}

func deleteIgnoringNotFound(t testing.TB, ri dynamic.ResourceInterface, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	if err := ri.Delete(ctx, name, forceDelete()); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("deleting %q: %v", name, err)
	}
}

// decodeYAML splits a multi-document YAML into objects, skipping empty
// documents. Every object needs apiVersion, kind and metadata.name.
func decodeYAML(docs string) ([]*unstructured.Unstructured, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(docs)))
	var objs []*unstructured.Unstructured
	for i := 0; ; i++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading YAML document %d: %w", i, err)
		}
		obj, err := decodeDoc(doc)
		if err != nil {
			return nil, fmt.Errorf("YAML document %d: %w", i, err)
		}
		if obj != nil {
			objs = append(objs, obj)
		}
	}
}

// decodeDoc decodes one YAML document; it returns nil for an empty one.
func decodeDoc(doc []byte) (*unstructured.Unstructured, error) {
	data, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, fmt.Errorf("converting to JSON: %w", err)
	}
	if s := strings.TrimSpace(string(data)); s == "null" || s == "{}" {
		return nil, nil
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("decoding object: %w", err)
	}
	if obj.GetName() == "" {
		return nil, fmt.Errorf("%s without metadata.name", obj.GetKind())
	}
	return obj, nil
}
