package webhook

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admregv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/plexus-cni/plexus/internal/controller"
	"github.com/plexus-cni/plexus/internal/nadclient"
	"github.com/plexus-cni/plexus/internal/testbed"
)

// readManifest decodes deploy/webhook/file into cfg.
func readManifest(t *testing.T, file string, cfg any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testbed.Root(), "deploy", "webhook", file))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(data, cfg); err != nil {
		t.Fatalf("deploy/webhook/%s: %v", file, err)
	}
}

// scope points a webhook of a manifest at url (plus its service path) and
// limits it to namespace ns and to objects labelled for this test.
func scope(cc *admregv1.WebhookClientConfig, nsSel, objSel **metav1.LabelSelector, url, ns string) {
	u := url + *cc.Service.Path
	*cc = admregv1.WebhookClientConfig{URL: &u}
	*nsSel = &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}}
	*objSel = &metav1.LabelSelector{MatchLabels: map[string]string{"plexus.dev/webhook-test": ns}}
}

// registerManifest registers deploy/webhook's validating configuration
// under a name of its own, pointed at url, limited to namespace ns (and to
// objects labelled for this test), and removes it when the test ends.
// Failure policies, rules and match conditions stay as the manifest has
// them.
func registerManifest(t *testing.T, env *testbed.Env, name, url, ns string) {
	t.Helper()
	var cfg admregv1.ValidatingWebhookConfiguration
	readManifest(t, "validatingwebhookconfiguration.yaml", &cfg)
	cfg.Name = name
	for i := range cfg.Webhooks {
		w := &cfg.Webhooks[i]
		scope(&w.ClientConfig, &w.NamespaceSelector, &w.ObjectSelector, url, ns)
	}
	api := env.Client.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	if _, err := api.Create(t.Context(), &cfg, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = api.Delete(context.Background(), name, metav1.DeleteOptions{}) })
}

// registerMutatingManifest is registerManifest for deploy/webhook's
// mutating configuration.
func registerMutatingManifest(t *testing.T, env *testbed.Env, name, url, ns string) {
	t.Helper()
	var cfg admregv1.MutatingWebhookConfiguration
	readManifest(t, "mutatingwebhookconfiguration.yaml", &cfg)
	cfg.Name = name
	for i := range cfg.Webhooks {
		w := &cfg.Webhooks[i]
		scope(&w.ClientConfig, &w.NamespaceSelector, &w.ObjectSelector, url, ns)
	}
	api := env.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	if _, err := api.Create(t.Context(), &cfg, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = api.Delete(context.Background(), name, metav1.DeleteOptions{}) })
}

func testNAD(ns, name, config string) map[string]any {
	return map[string]any{"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
		"metadata": map[string]any{"name": name, "namespace": ns, "labels": map[string]any{"plexus.dev/webhook-test": ns}},
		"spec":     map[string]any{"config": config}}
}

func testPod(ns, name, networks string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"plexus.dev/webhook-test": ns},
			Annotations: map[string]string{"k8s.v1.cni.cncf.io/networks": networks}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/none"}}},
	}
}

// TestAPIServer runs the webhook component behind the real API server:
// bad objects are refused with the field named, good ones admitted, and
// with the server stopped the manifest's failure policies apply.
func TestAPIServer(t *testing.T) {
	env := testbed.Require(t)
	ns := env.Namespace(t, "webhook")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	name := "plexus-webhook-" + ns
	registerManifest(t, env, name, "https://"+l.Addr().String(), ns)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	comp := NewComponent(controller.Deps{Client: env.Client, Dynamic: env.Dynamic, NADs: nadClient(t, env.RESTConfig), Log: slog.New(slog.NewTextHandler(t.Output(), nil))},
		Options{Listener: l, SecretNamespace: ns, SecretName: "webhook-tls", Hosts: []string{"127.0.0.1"}, Configuration: name,
			Policy: Policy{NamespaceIsolation: true, GlobalNamespaces: []string{"default"}}})
	go func() { done <- comp.Run(ctx) }()
	t.Cleanup(cancel)

	nads := env.Dynamic.Resource(testbed.NADResource()).Namespace(ns)
	badIPAM := `{"cniVersion":"0.3.1","type":"macvlan","ipam":{"type":"host-local","subnet":"10.0.0.0/33"}}`
	// The configuration and its caBundle reach the API server's webhook
	// cache asynchronously: wait until a bad NAD is refused.
	var last string
	err = wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := nads.Create(ctx, unstructuredOf(testNAD(ns, "probe", badIPAM)), metav1.CreateOptions{})
		if err == nil {
			_ = nads.Delete(ctx, "probe", metav1.DeleteOptions{})
			last = "admitted"
			return false, nil
		}
		last = err.Error()
		return strings.Contains(last, `denied the request: plexus: spec.config.ipam.subnet: invalid value "10.0.0.0/33"`), nil
	})
	if err != nil {
		t.Fatalf("webhook never refused a bad NAD: last answer %s", last)
	}

	t.Run("NADs", func(t *testing.T) {
		for _, tt := range []struct{ name, config, want string }{
			{"bad-json", `{"type":`, "spec.config: invalid JSON"},
			{"no-type", `{"cniVersion":"0.3.1"}`, "spec.config.type: is required"},
			{"good", `{"cniVersion":"0.3.1","type":"macvlan","master":"eth9","ipam":{"type":"static"}}`, ""},
		} {
			_, err := nads.Create(t.Context(), unstructuredOf(testNAD(ns, tt.name, tt.config)), metav1.CreateOptions{})
			expect(t, "NAD "+tt.name, err, tt.want)
		}
	})
	t.Run("pods", func(t *testing.T) {
		pods := env.Client.CoreV1().Pods(ns)
		for _, tt := range []struct{ name, networks, want string }{
			{"missing", "good,absent", "networks[1]: NetworkAttachmentDefinition " + ns + "/absent not found"},
			{"isolated", "other/good", "networks[0]: network other/good is in another namespace than the pod"},
			{"malformed", "good,", "metadata.annotations[k8s.v1.cni.cncf.io/networks]: networks[1]"},
			{"fine", "good,good", ""},
		} {
			_, err := pods.Create(t.Context(), testPod(ns, tt.name, tt.networks), metav1.CreateOptions{})
			expect(t, "pod "+tt.name, err, tt.want)
		}
	})
	t.Run("pod updates (hot-plug)", func(t *testing.T) {
		pods := env.Client.CoreV1().Pods(ns)
		if _, err := pods.Create(t.Context(), testPod(ns, "running", "good"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		patch := func(networks string) error {
			body := fmt.Sprintf(`{"metadata":{"annotations":{"k8s.v1.cni.cncf.io/networks":%q}}}`, networks)
			_, err := pods.Patch(t.Context(), "running", types.MergePatchType, []byte(body), metav1.PatchOptions{})
			return err
		}
		expect(t, "a bad change of a running pod's networks", patch("good,absent"),
			"networks[1]: NetworkAttachmentDefinition "+ns+"/absent not found")
		expect(t, "a good change", patch("good,good"), "")
		// Updates that leave the annotation alone are not sent: with the
		// NAD gone, a label change still goes through, a networks change not.
		if err := nads.Delete(t.Context(), "good", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		_, err := pods.Patch(t.Context(), "running", types.MergePatchType, []byte(`{"metadata":{"labels":{"touched":"yes"}}}`), metav1.PatchOptions{})
		expect(t, "a label change", err, "")
		expect(t, "a networks change naming the deleted NAD", patch("good"), "networks[0]: NetworkAttachmentDefinition "+ns+"/good not found")
	})

	t.Run("server down: NADs fail closed, pods open", func(t *testing.T) {
		cancel()
		<-done
		_, err := nads.Create(t.Context(), unstructuredOf(testNAD(ns, "while-down", `{"type":"macvlan"}`)), metav1.CreateOptions{})
		expect(t, "NAD while down", err, "failed calling webhook")
		_, err = env.Client.CoreV1().Pods(ns).Create(t.Context(), testPod(ns, "while-down", "absent"), metav1.CreateOptions{})
		expect(t, "pod while down", err, "")
	})
}

func expect(t *testing.T, what string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%s: refused: %v", what, err)
	case want != "" && err == nil:
		t.Errorf("%s: admitted, want refusal containing %q", what, want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("%s: error %q, want it to contain %q", what, err, want)
	}
}

// nadClient is the typed NAD clientset the webhook reads with.
func nadClient(t *testing.T, cfg *rest.Config) nadclient.Interface {
	t.Helper()
	cs, err := nadclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}
