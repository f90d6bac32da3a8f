package webhook

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/plexus-cni/plexus/internal/controller"
	"github.com/plexus-cni/plexus/internal/nadclient"
	"github.com/plexus-cni/plexus/pkg/nad"
)

// Options configure the webhook component.
type Options struct {
	// Address to listen on (":9443"); Listener, when set, is used instead.
	Address  string
	Listener net.Listener
	// CertDir holds tls.crt and tls.key. Empty: the certificate comes from
	// the Secret below, generated (with its CA) when the Secret is absent.
	CertDir string
	// SecretNamespace/SecretName keep a generated certificate, so that every
	// replica serves the same one.
	SecretNamespace, SecretName string
	// Hosts are the names the generated certificate is valid for.
	Hosts []string
	// Configuration is the ValidatingWebhookConfiguration whose caBundle is
	// set to the generated CA ("" leaves it alone).
	Configuration string
	// MutatingConfiguration is the MutatingWebhookConfiguration whose
	// caBundle is set to the generated CA ("" leaves it alone).
	MutatingConfiguration string
	Policy                Policy
}

// Component serves the webhook on every replica.
type Component struct {
	o   Options
	d   controller.Deps
	log *slog.Logger
}

var _ controller.Component = (*Component)(nil)

// NewComponent returns the webhook component.
func NewComponent(d controller.Deps, o Options) *Component {
	return &Component{o: o, d: d, log: d.Log.With("component", "webhook")}
}

// Name implements controller.Component.
func (c *Component) Name() string { return "webhook" }

// LeaderOnly implements controller.Component.
func (c *Component) LeaderOnly() bool { return false }

// Run serves until ctx ends.
func (c *Component) Run(ctx context.Context) error {
	cert, ca, err := c.certificate(ctx)
	if err != nil {
		return err
	}
	if ca != nil && c.o.Configuration != "" {
		go c.injectUntilDone(ctx, "validatingwebhookconfiguration", c.o.Configuration, ca, InjectCABundle)
	}
	if ca != nil && c.o.MutatingConfiguration != "" {
		go c.injectUntilDone(ctx, "mutatingwebhookconfiguration", c.o.MutatingConfiguration, ca, InjectMutatingCABundle)
	}
	l := c.o.Listener
	if l == nil {
		if l, err = net.Listen("tcp", c.o.Address); err != nil {
			return fmt.Errorf("webhook address %s: %w", c.o.Address, err)
		}
	}
	nads := apiNADs{c.d.NADs}
	h := &Handler{V: &Validator{NADs: nads, Policy: c.o.Policy}, I: &Injector{NADs: nads, Policy: c.o.Policy, Log: c.log},
		Log: c.log, Metrics: c.d.Metrics}
	srv := &http.Server{Handler: h.Mux(), ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(l, "", "") }()
	c.log.Info("serving", "address", l.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("webhook server: %w", err)
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
		return ctx.Err()
	}
}

// injectUntilDone sets the caBundle of the webhook configuration name (of
// resource kind) with inject, retrying while the configuration is missing
// (it may be applied after the controller starts).
func (c *Component) injectUntilDone(ctx context.Context, kind, name string, ca []byte,
	inject func(context.Context, kubernetes.Interface, string, []byte) error) {
	_ = wait.PollUntilContextCancel(ctx, 5*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := inject(ctx, c.d.Client, name, ca); err != nil {
			c.log.Warn("caBundle not set yet", "error", err)
			return false, nil
		}
		c.log.Info("caBundle set", kind, name)
		return true, nil
	})
}

// certificate returns the serving certificate, and the CA to inject when
// it was generated or read from the Secret.
func (c *Component) certificate(ctx context.Context) (tls.Certificate, []byte, error) {
	if c.o.CertDir != "" {
		cert, err := LoadCertDir(c.o.CertDir)
		return cert, nil, err
	}
	secrets := c.d.Client.CoreV1().Secrets(c.o.SecretNamespace)
	s, err := secrets.Get(ctx, c.o.SecretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		secret, gerr := newSecret(c.o)
		if gerr != nil {
			return tls.Certificate{}, nil, gerr
		}
		s, err = secrets.Create(ctx, secret, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) { // another replica was first
			s, err = secrets.Get(ctx, c.o.SecretName, metav1.GetOptions{})
		}
	}
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("webhook secret %s/%s: %w", c.o.SecretNamespace, c.o.SecretName, err)
	}
	cert, err := tls.X509KeyPair(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("webhook secret %s/%s: %w", c.o.SecretNamespace, c.o.SecretName, err)
	}
	return cert, s.Data["ca.crt"], nil
}

// newSecret generates a CA and serving certificate into a TLS Secret.
func newSecret(o Options) (*corev1.Secret, error) {
	g, err := Generate(o.Hosts, time.Now())
	if err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := g.PEM()
	if err != nil {
		return nil, err
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: o.SecretName, Namespace: o.SecretNamespace},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM, "ca.crt": g.CAPEM},
	}, nil
}

// apiNADs reads NADs from the API server (a fresh GET: a NAD created just
// before its pod must be found).
type apiNADs struct{ cs nadclient.Interface }

// NADExists implements NADGetter.
func (a apiNADs) NADExists(ctx context.Context, ns, name string) (bool, error) {
	obj, err := a.get(ctx, ns, name)
	return obj != nil, err
}

// NADResourceName implements NADGetter.
func (a apiNADs) NADResourceName(ctx context.Context, ns, name string) (string, bool, error) {
	obj, err := a.get(ctx, ns, name)
	if obj == nil {
		return "", false, err
	}
	return obj.Annotations[nad.ResourceNameAnnotation], true, nil
}

// get returns the NAD ns/name, or nil and no error when it does not exist.
func (a apiNADs) get(ctx context.Context, ns, name string) (*nad.NetworkAttachmentDefinition, error) {
	obj, err := a.cs.K8sCniCncfIoV1().NetworkAttachmentDefinitions(ns).Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		return obj, nil
	case apierrors.IsNotFound(err):
		return nil, nil
	default:
		return nil, err
	}
}
