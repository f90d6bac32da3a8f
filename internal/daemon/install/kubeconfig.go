package install

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// In-cluster locations of the service account's credentials.
const (
	DefaultTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	DefaultCAFile    = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
)

// KubeconfigOptions say where the plugin's kubeconfig comes from and goes.
type KubeconfigOptions struct {
	// Path is the kubeconfig written for the plugin (mode 0600).
	Path string
	// Server is the API server URL.
	Server string
	// TokenFile and CAFile are the service account's token and CA bundle.
	TokenFile, CAFile string
}

// RenderKubeconfig builds the kubeconfig from the current token and CA.
// Errors name the files, never their content.
func RenderKubeconfig(o KubeconfigOptions) ([]byte, error) {
	if o.Server == "" {
		return nil, errors.New("kubeconfig server: empty (not in a cluster? set apiServer)")
	}
	token, err := os.ReadFile(o.TokenFile)
	if err != nil {
		return nil, fmt.Errorf("service account token %s: %w", o.TokenFile, err)
	}
	if len(strings.TrimSpace(string(token))) == 0 {
		return nil, fmt.Errorf("service account token %s: empty", o.TokenFile)
	}
	ca, err := os.ReadFile(o.CAFile)
	if err != nil {
		return nil, fmt.Errorf("CA bundle %s: %w", o.CAFile, err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["cluster"] = &clientcmdapi.Cluster{Server: o.Server, CertificateAuthorityData: ca}
	cfg.AuthInfos["plexus"] = &clientcmdapi.AuthInfo{Token: strings.TrimSpace(string(token))}
	cfg.Contexts["plexus"] = &clientcmdapi.Context{Cluster: "cluster", AuthInfo: "plexus"}
	cfg.CurrentContext = "plexus"
	out, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, fmt.Errorf("encode kubeconfig %s: %w", o.Path, errors.New("serialisation failed"))
	}
	return out, nil
}
