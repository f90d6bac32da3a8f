package daemon

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/internal/testbed/nodesim"
)

// The service account token rotates: plexusd rewrites the plugin's
// kubeconfig, and the plugin — here run in process with that kubeconfig,
// under the RBAC of deploy/ — keeps working after the old token is dead.
func TestTokenRotation(t *testing.T) {
	w := newWorld(t)
	w.macvlanNAD("macvlan")
	ns, _ := applyDeploy(t, w.env)
	tokenA := w.boundToken(ns, "plexusd-token-a")
	tokenB := w.boundToken(ns, "plexusd-token-b")
	n := w.newNode("token-1")
	sa := t.TempDir()
	tokenFile := filepath.Join(sa, "token")
	writeToken(t, tokenFile, tokenA)
	kubeconfig := filepath.Join(n.StateDir, "plexus.d", "plexus.kubeconfig")
	d := w.start(n, w.daemonConfig(n, map[string]any{
		"pluginKubeconfig": kubeconfig, "tokenFile": tokenFile, "apiServer": w.env.RESTConfig.Host,
		"caFile": filepath.Join(testbed.Dir(), "run", "pki", "ca.crt"),
		// The plugin runs in process, so that it uses the kubeconfig.
		"pluginConfig": map[string]any{"daemonSocket": "", "logToStderr": false,
			"logFile": filepath.Join(n.StateDir, "plexus.log"), "logLevel": "debug"},
	}))
	if got := kubeconfigToken(t, kubeconfig); got != tokenA {
		t.Fatal("the kubeconfig does not carry the first token")
	}
	w.runAndCheck(n, "before rotation")

	writeToken(t, tokenFile, tokenB)
	waitFor(t, 30*time.Second, "the kubeconfig carries the new token", func() (bool, string) {
		return kubeconfigToken(t, kubeconfig) == tokenB, "old token"
	})
	// The old token dies with its bound object.
	if err := w.env.Client.CoreV1().Secrets(ns).Delete(t.Context(), "plexusd-token-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	old := w.clientWithToken(tokenA)
	waitFor(t, 30*time.Second, "the old token is rejected", func() (bool, string) {
		_, err := old.CoreV1().Pods(w.ns).List(t.Context(), metav1.ListOptions{Limit: 1})
		return apierrors.IsUnauthorized(err), "still accepted"
	})
	w.runAndCheck(n, "after rotation")
	for _, tok := range []string{tokenA, tokenB} {
		if strings.Contains(d.log.String(), tok) {
			t.Error("a token appears in plexusd's log")
		}
	}
}

// boundToken returns a token of the plexusd service account bound to a new
// Secret: deleting the Secret invalidates the token.
func (w *world) boundToken(ns, secret string) string {
	w.t.Helper()
	s, err := w.env.Client.CoreV1().Secrets(ns).Create(w.t.Context(),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: secret}}, metav1.CreateOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	exp := int64(3600)
	tr, err := w.env.Client.CoreV1().ServiceAccounts(ns).CreateToken(w.t.Context(), "plexusd", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp, BoundObjectRef: &authenticationv1.BoundObjectReference{
			Kind: "Secret", APIVersion: "v1", Name: s.Name, UID: s.UID}},
	}, metav1.CreateOptions{})
	if err != nil {
		w.t.Fatalf("TokenRequest: %v", err)
	}
	return tr.Status.Token
}

func (w *world) clientWithToken(token string) kubernetes.Interface {
	cfg := rest.AnonymousClientConfig(w.env.RESTConfig)
	cfg.BearerToken = token
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	return cs
}

// writeToken replaces the token file the way the kubelet does: atomically.
func writeToken(t *testing.T, path, token string) {
	t.Helper()
	if err := os.WriteFile(path+".new", []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

func kubeconfigToken(t *testing.T, path string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return ""
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode %v, want 0600", fi.Mode())
	}
	if c := cfg.Contexts[cfg.CurrentContext]; c != nil && cfg.AuthInfos[c.AuthInfo] != nil {
		return cfg.AuthInfos[c.AuthInfo].Token
	}
	return ""
}

// runAndCheck runs a pod through the plugin: its ADD reads the pod and
// the NAD and writes network-status with the kubeconfig's credentials.
func (w *world) runAndCheck(n *node, when string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := n.RunPod(ctx, w.t, nodesim.PodSpec{Namespace: w.ns, Annotations: netsAnnotation("macvlan")})
	if err != nil {
		w.t.Fatalf("%s: ADD: %v", when, err)
	}
	if got := links(w.t, p); !slices.Equal(got, []string{"eth0", "lo", "net1"}) {
		w.t.Errorf("%s: pod has %v", when, got)
	}
	obj, err := p.Object(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	if !strings.Contains(obj.Annotations["k8s.v1.cni.cncf.io/network-status"], w.ns+"/macvlan") {
		w.t.Errorf("%s: network-status %q", when, obj.Annotations["k8s.v1.cni.cncf.io/network-status"])
	}
	if err := p.Remove(ctx); err != nil {
		w.t.Errorf("%s: DEL: %v", when, err)
	}
}
