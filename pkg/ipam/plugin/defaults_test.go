package plugin

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"k8s.io/client-go/rest"
)

// apiRecorder answers the IPSpace list of STATUS and records who asked
// where.
type apiRecorder struct {
	mu   sync.Mutex
	seen []string // "token path"
}

func (a *apiRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.seen = append(a.seen, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")+" "+r.URL.Path)
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, `{"apiVersion":"plexus.dev/v1alpha1","kind":"IPSpaceList","items":[]}`)
}

func (a *apiRecorder) last() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.seen) == 0 {
		return ""
	}
	return a.seen[len(a.seen)-1]
}

// A configuration that names no store works through plexusd: with the
// flat file plexusd wrote it uses the kubeconfig named there, without one
// plexusd's own credentials (objects in kube-system unless
// kubernetes.namespace says otherwise). The binary on its own still
// reports the missing kubeconfig with code 7.
func TestDaemonStoreDefaults(t *testing.T) {
	api := &apiRecorder{}
	srv := httptest.NewTLSServer(api) // clientcmd sends tokens over TLS only
	defer srv.Close()
	dir := t.TempDir()
	kc := filepath.Join(dir, "plexus-ipam.kubeconfig")
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "`+srv.URL+`", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: flat-token}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`), 0o600); err != nil {
		t.Fatal(err)
	}
	flat := filepath.Join(dir, "plexus-ipam.conf")
	status := func(d *Daemon, ipam string) error {
		_, _, err := d.Do(t.Context(), Request{Command: "STATUS", Args: &skel.CmdArgs{StdinData: []byte(`{"cniVersion":"1.1.0","name":"n","ipam":` + ipam + `}`)}})
		return err
	}
	own := &rest.Config{Host: srv.URL, BearerToken: "own-token", TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
	d := NewDaemon(Default(), nil, DaemonOptions{ConfFiles: []string{flat}, Credentials: own})
	bare := `{"type":"plexus-ipam","range":"198.51.100.0/24"}`
	if err := status(d, bare); err != nil || api.last() != "own-token /apis/plexus.dev/v1alpha1/namespaces/kube-system/ipspaces" {
		t.Errorf("no flat file: %v, request %q; want plexusd's credentials in kube-system", err, api.last())
	}
	if err := status(d, `{"type":"plexus-ipam","range":"198.51.100.0/24","kubernetes":{"namespace":"ipam"}}`); err != nil ||
		api.last() != "own-token /apis/plexus.dev/v1alpha1/namespaces/ipam/ipspaces" {
		t.Errorf("namespace set: %v, request %q", err, api.last())
	}
	if err := os.WriteFile(flat, []byte(`{"kubernetes":{"kubeconfig":"`+kc+`"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := status(d, bare); err != nil || api.last() != "flat-token /apis/plexus.dev/v1alpha1/namespaces/kube-system/ipspaces" {
		t.Errorf("flat file: %v, request %q; want the kubeconfig it names", err, api.last())
	}
	alone := NewDaemon(Default(), nil, DaemonOptions{})
	alone.Base.Loader.DefaultPaths = nil // not this machine's files
	if err := status(alone, bare); code(err) != types.ErrInvalidNetworkConfig ||
		!strings.Contains(err.Error(), "ipam.kubernetes.kubeconfig") {
		t.Errorf("without defaults: %v, want code 7 naming ipam.kubernetes.kubeconfig", err)
	}
}
