package install

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/plexus-cni/plexus/internal/kube"
)

// TestPluginReadsTheKubeconfig: the kubeconfig plexusd writes (clientcmd's
// encoding) is one the in-process plugin's own reader takes, with the
// token and the CA.
func TestPluginReadsTheKubeconfig(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, IsCA: true,
		BasicConstraintsValid: true, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	sa := t.TempDir()
	o := KubeconfigOptions{Path: filepath.Join(sa, "plexus.kubeconfig"), Server: "https://192.0.2.10:6443",
		TokenFile: filepath.Join(sa, "token"), CAFile: filepath.Join(sa, "ca.crt")}
	write(t, o.TokenFile, "the-token\n")
	write(t, o.CAFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	out, err := RenderKubeconfig(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(o.Path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := kube.LoadKubeconfig(o.Path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != o.Server || cfg.Header.Get("Authorization") != "Bearer the-token" || cfg.TLS == nil || cfg.TLS.RootCAs == nil {
		t.Errorf("plugin read host %q, header %v, TLS %+v", cfg.Host, cfg.Header, cfg.TLS)
	}
}
