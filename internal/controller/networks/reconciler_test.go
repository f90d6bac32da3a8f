package networks

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/plexus-cni/plexus/internal/controller"
	"github.com/plexus-cni/plexus/internal/nadclient"
	"github.com/plexus-cni/plexus/internal/testbed"
	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
	plexusclient "github.com/plexus-cni/plexus/pkg/client/clientset/versioned"
)

const waitFor = 30 * time.Second

// startReconciler runs a Reconciler against the test bed until the test ends.
func startReconciler(t *testing.T, env *testbed.Env) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	plexus, err := plexusclient.NewForConfig(env.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	nads, err := nadclient.NewForConfig(env.RESTConfig)
	if err != nil {
		t.Fatal(err)
	}
	r := New(controller.Deps{Dynamic: env.Dynamic, Plexus: plexus, NADs: nads, Log: slog.New(slog.NewTextHandler(t.Output(), nil))})
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

func createDef(t *testing.T, env *testbed.Env, name string, spec v1.NetworkDefinitionSpec) {
	t.Helper()
	def := &v1.NetworkDefinition{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	u := toUnstructured(t, def)
	if _, err := env.Dynamic.Resource(v1.SchemeGroupVersion.WithResource(v1.ResourceNetworkDefinitions)).Create(t.Context(), u, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating networkdefinition %s: %v", name, err)
	}
	t.Cleanup(func() {
		err := env.Dynamic.Resource(v1.SchemeGroupVersion.WithResource(v1.ResourceNetworkDefinitions)).Delete(context.Background(), name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting networkdefinition %s: %v", name, err)
		}
	})
}

func toUnstructured(t *testing.T, def *v1.NetworkDefinition) *unstructured.Unstructured {
	t.Helper()
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(def)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: obj}
	u.SetAPIVersion(v1.Group + "/" + v1.Version)
	u.SetKind(v1.KindNetworkDefinition)
	return u
}

func updateSpec(t *testing.T, env *testbed.Env, name string, mutate func(*v1.NetworkDefinitionSpec)) {
	t.Helper()
	c := env.Dynamic.Resource(v1.SchemeGroupVersion.WithResource(v1.ResourceNetworkDefinitions))
	u, err := c.Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	def, err := fromUnstructured(u)
	if err != nil {
		t.Fatal(err)
	}
	mutate(&def.Spec)
	if _, err := c.Update(t.Context(), toUnstructured(t, def), metav1.UpdateOptions{}); err != nil {
		t.Fatalf("updating networkdefinition %s: %v", name, err)
	}
}

// eventually polls cond until it holds, failing the test after waitFor
// with the last reason cond gave.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, waitFor, true, func(context.Context) (bool, error) {
		ok, why := cond()
		last = why
		return ok, nil
	})
	if err != nil {
		t.Fatalf("%s: not reached after %v: %s", what, waitFor, last)
	}
}

// nadConfig returns the NAD's spec.config, or "" and the reason it has none.
func nadConfig(env *testbed.Env, ns, name string) (string, string) {
	u, err := env.Dynamic.Resource(testbed.NADResource()).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return "", err.Error()
	}
	cfg, _, _ := unstructured.NestedString(u.Object, "spec", "config")
	return cfg, "config " + cfg
}

func nadGone(env *testbed.Env, ns, name string) func() (bool, string) {
	return func() (bool, string) {
		_, err := env.Dynamic.Resource(testbed.NADResource()).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), "NAD still there"
	}
}

func condition(env *testbed.Env, name, typ string) (*metav1.Condition, *v1.NetworkDefinition) {
	u, err := env.Dynamic.Resource(v1.SchemeGroupVersion.WithResource(v1.ResourceNetworkDefinitions)).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil, nil
	}
	def, err := fromUnstructured(u)
	if err != nil {
		return nil, nil
	}
	return meta.FindStatusCondition(def.Status.Conditions, typ), def
}

func conditionIs(env *testbed.Env, name, typ string, status metav1.ConditionStatus, msgPart string) func() (bool, string) {
	return func() (bool, string) {
		c, def := condition(env, name, typ)
		if c == nil {
			return false, "no condition " + typ
		}
		ok := c.Status == status && strings.Contains(c.Message, msgPart) && def.Status.ObservedGeneration == def.Generation &&
			c.ObservedGeneration == def.Generation
		return ok, c.String()
	}
}

// TestS3 is scenario S3: an operator declares macvlan-network in tomcat;
// the NAD appears, edits are put back, a move deletes the old NAD, and
// removing the declaration removes the NAD.
func TestS3(t *testing.T) {
	env := testbed.Require(t)
	tomcat := env.Namespace(t, "tomcat")
	other := env.Namespace(t, "other")
	startReconciler(t, env)
	defName := tomcat + "-macvlan"
	want := `{ "cniVersion": "0.3.1", "type": "macvlan", "master": "plexus-test0", "mode": "bridge", "ipam": {"type":"static","addresses":[{"address":"198.51.100.250/24","gateway":"198.51.100.1"}]} }`
	createDef(t, env, defName, v1.NetworkDefinitionSpec{Type: "SimpleMacvlan", Name: "macvlan-network", Namespace: tomcat,
		SimpleMacvlanConfig: &v1.SimpleMacvlanConfig{Master: "plexus-test0", Mode: "Bridge", IPAMConfig: &v1.IPAMConfig{Type: "Static",
			StaticIPAMConfig: &v1.StaticIPAMConfig{Addresses: []v1.StaticIPAMAddress{{Address: "198.51.100.250/24", Gateway: "198.51.100.1"}}}}}})

	eventually(t, "NAD rendered", func() (bool, string) { cfg, why := nadConfig(env, tomcat, "macvlan-network"); return cfg == want, why })
	eventually(t, "Rendered=True", conditionIs(env, defName, v1.ConditionRendered, metav1.ConditionTrue, tomcat+"/macvlan-network"))
	eventually(t, "Invalid=False", conditionIs(env, defName, v1.ConditionInvalid, metav1.ConditionFalse, ""))
	list, err := env.Dynamic.Resource(testbed.NADResource()).Namespace(tomcat).List(t.Context(), metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 || list.Items[0].GetName() != "macvlan-network" {
		t.Fatalf("listing NADs in %s: %v, %d items; want macvlan-network", tomcat, err, len(list.Items))
	}
	if refs := list.Items[0].GetOwnerReferences(); len(refs) != 1 || refs[0].Kind != v1.KindNetworkDefinition || refs[0].Name != defName {
		t.Errorf("owner references = %+v, want the NetworkDefinition", refs)
	}

	t.Run("manual edit is put back", func(t *testing.T) {
		u := list.Items[0].DeepCopy()
		u.Object["spec"] = map[string]any{"config": `{"cniVersion":"0.3.1","type":"bridge"}`}
		u.SetLabels(nil)
		if _, err := env.Dynamic.Resource(testbed.NADResource()).Namespace(tomcat).Update(t.Context(), u, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "edit reverted", func() (bool, string) { cfg, why := nadConfig(env, tomcat, "macvlan-network"); return cfg == want, why })
	})

	t.Run("manual delete is put back", func(t *testing.T) {
		env.DeleteNAD(t, tomcat, "macvlan-network")
		eventually(t, "NAD recreated", func() (bool, string) { cfg, why := nadConfig(env, tomcat, "macvlan-network"); return cfg == want, why })
	})

	t.Run("invalid change keeps the NAD and reports Invalid", func(t *testing.T) {
		updateSpec(t, env, defName, func(s *v1.NetworkDefinitionSpec) { s.SimpleMacvlanConfig.Mode = "Loud" })
		eventually(t, "Invalid=True", conditionIs(env, defName, v1.ConditionInvalid, metav1.ConditionTrue,
			"invalid Additional Network Configuration: [invalid Macvlan mode: Loud]"))
		eventually(t, "Rendered=False", conditionIs(env, defName, v1.ConditionRendered, metav1.ConditionFalse, "invalid Macvlan mode"))
		if cfg, why := nadConfig(env, tomcat, "macvlan-network"); cfg != want {
			t.Errorf("NAD changed by an invalid definition: %s", why)
		}
	})

	t.Run("move to another namespace and name", func(t *testing.T) {
		updateSpec(t, env, defName, func(s *v1.NetworkDefinitionSpec) {
			s.SimpleMacvlanConfig.Mode = "bridge" // legacy spelling, canonicalized
			s.Namespace, s.Name = other, "moved"
		})
		eventually(t, "new NAD", func() (bool, string) { cfg, why := nadConfig(env, other, "moved"); return cfg == want, why })
		eventually(t, "old NAD deleted", nadGone(env, tomcat, "macvlan-network"))
		eventually(t, "Rendered=True", conditionIs(env, defName, v1.ConditionRendered, metav1.ConditionTrue, other+"/moved"))
	})

	t.Run("removing the declaration removes the NAD", func(t *testing.T) {
		if err := env.Dynamic.Resource(v1.SchemeGroupVersion.WithResource(v1.ResourceNetworkDefinitions)).Delete(t.Context(), defName, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "NAD deleted", nadGone(env, other, "moved"))
	})
}

// TestConflict: a NAD the definition did not render is never overwritten.
func TestConflict(t *testing.T) {
	env := testbed.Require(t)
	ns := env.Namespace(t, "conflict")
	mine := `{"cniVersion":"0.3.1","type":"bridge"}`
	env.CreateNAD(t, ns, "taken", mine)
	startReconciler(t, env)
	defName := ns + "-raw"
	createDef(t, env, defName, v1.NetworkDefinitionSpec{Type: "Raw", Name: "taken", Namespace: ns, RawCNIConfig: `{"cniVersion":"0.3.1","type":"macvlan"}`})
	eventually(t, "Rendered=False Conflict", conditionIs(env, defName, v1.ConditionRendered, metav1.ConditionFalse, "was not rendered from this NetworkDefinition"))
	if cfg, why := nadConfig(env, ns, "taken"); cfg != mine {
		t.Errorf("someone else's NAD was overwritten: %s", why)
	}
}

// fromUnstructured converts an object the dynamic client read.
func fromUnstructured(u *unstructured.Unstructured) (*v1.NetworkDefinition, error) {
	var def v1.NetworkDefinition
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &def); err != nil {
		return nil, fmt.Errorf("networkdefinition %s: %w", u.GetName(), err)
	}
	return &def, nil
}
