package webhook

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"path/filepath"
	"time"

	admregv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// certValidity is how long a generated certificate is valid; the
// controller generates a new one on every start.
const certValidity = 365 * 24 * time.Hour

// Generated is a serving certificate signed by a fresh CA.
type Generated struct {
	Cert tls.Certificate
	// CAPEM is the CA certificate, for the configuration's caBundle.
	CAPEM []byte
}

// Generate creates a CA and a serving certificate for hosts (DNS names or
// IP addresses). The CA's key is discarded.
func Generate(hosts []string, now time.Time) (*Generated, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	caTmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "plexus-webhook-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(certValidity), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	ca, _ := x509.ParseCertificate(caDER) // just created
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("serving key: %w", err)
	}
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "plexus-webhook"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(certValidity),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("serving certificate for %v: %w", hosts, err)
	}
	return &Generated{
		Cert:  tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		CAPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
	}, nil
}

// PEM encodes the serving certificate and its key.
func (g *Generated) PEM() (certPEM, keyPEM []byte, err error) {
	der, err := x509.MarshalPKCS8PrivateKey(g.Cert.PrivateKey)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding the serving key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: g.Cert.Certificate[0]})
	return certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127)) // crypto/rand does not fail
	return n
}

// LoadCertDir loads tls.crt and tls.key from dir (a mounted TLS Secret, or
// cert-manager's output).
func LoadCertDir(dir string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("webhook cert dir %s: %w", dir, err)
	}
	return cert, nil
}

// InjectCABundle sets caBundle in every webhook of the
// ValidatingWebhookConfiguration name.
func InjectCABundle(ctx context.Context, c kubernetes.Interface, name string, ca []byte) error {
	api := c.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	return updateCABundle(ctx, "validatingwebhookconfiguration", name, api.Get, api.Update,
		func(cfg *admregv1.ValidatingWebhookConfiguration) {
			for i := range cfg.Webhooks {
				cfg.Webhooks[i].ClientConfig.CABundle = ca
			}
		})
}

// InjectMutatingCABundle sets caBundle in every webhook of the
// MutatingWebhookConfiguration name.
func InjectMutatingCABundle(ctx context.Context, c kubernetes.Interface, name string, ca []byte) error {
	api := c.AdmissionregistrationV1().MutatingWebhookConfigurations()
	return updateCABundle(ctx, "mutatingwebhookconfiguration", name, api.Get, api.Update,
		func(cfg *admregv1.MutatingWebhookConfiguration) {
			for i := range cfg.Webhooks {
				cfg.Webhooks[i].ClientConfig.CABundle = ca
			}
		})
}

// updateCABundle reads the webhook configuration name (of resource kind),
// sets its caBundles and writes it back, retrying on conflicts.
func updateCABundle[T any](ctx context.Context, kind, name string,
	get func(context.Context, string, metav1.GetOptions) (T, error),
	update func(context.Context, T, metav1.UpdateOptions) (T, error), set func(T)) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cfg, err := get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		set(cfg)
		_, err = update(ctx, cfg, metav1.UpdateOptions{FieldManager: "plexus-controller"})
		return err
	})
	if err != nil {
		return fmt.Errorf("%s %s: setting caBundle: %w", kind, name, err)
	}
	return nil
}
