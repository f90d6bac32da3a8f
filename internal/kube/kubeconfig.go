package kube

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// Config is where the API server is and how to reach it: what the plugin
// takes from a kubeconfig (LoadKubeconfig).
type Config struct {
	// Host is the API server's URL, with any path prefix.
	Host string
	// TLS verifies the server and holds the client certificate (nil: the
	// system's roots, no client certificate).
	TLS *tls.Config
	// Proxy picks the proxy of a request (nil: http.ProxyFromEnvironment,
	// as client-go).
	Proxy func(*http.Request) (*url.URL, error)
	// Header goes with every request: Authorization and Impersonate-*.
	Header http.Header
}

// kubeconfig is the part of a kubeconfig file (clientcmd's v1 Config) that
// the plugin reads; the keys are clientcmd's.
type kubeconfig struct {
	CurrentContext string      `json:"current-context"`
	Clusters       []kcCluster `json:"clusters"`
	Users          []kcUser    `json:"users"`
	Contexts       []kcContext `json:"contexts"`
}

type kcCluster struct {
	Name    string `json:"name"`
	Cluster struct {
		Server                   string `json:"server"`
		TLSServerName            string `json:"tls-server-name"`
		InsecureSkipTLSVerify    bool   `json:"insecure-skip-tls-verify"`
		CertificateAuthority     string `json:"certificate-authority"`
		CertificateAuthorityData []byte `json:"certificate-authority-data"`
		ProxyURL                 string `json:"proxy-url"`
	} `json:"cluster"`
}

type kcUser struct {
	Name string `json:"name"`
	User struct {
		ClientCertificate     string              `json:"client-certificate"`
		ClientCertificateData []byte              `json:"client-certificate-data"`
		ClientKey             string              `json:"client-key"`
		ClientKeyData         []byte              `json:"client-key-data"`
		Token                 string              `json:"token"`
		TokenFile             string              `json:"tokenFile"`
		Impersonate           string              `json:"as"`
		ImpersonateUID        string              `json:"as-uid"`
		ImpersonateGroups     []string            `json:"as-groups"`
		ImpersonateUserExtra  map[string][]string `json:"as-user-extra"`
		Username              string              `json:"username"`
		Password              string              `json:"password"`
		AuthProvider          *authProviderConfig `json:"auth-provider"`
		Exec                  *execConfig         `json:"exec"`
	} `json:"user"`
}

type kcContext struct {
	Name    string `json:"name"`
	Context struct {
		Cluster string `json:"cluster"`
		User    string `json:"user"`
	} `json:"context"`
}

func (c *kcCluster) itemName() string { return c.Name }
func (u *kcUser) itemName() string    { return u.Name }
func (c *kcContext) itemName() string { return c.Name }

// byName returns the item of a kubeconfig list with that name (the last
// one, as clientcmd's maps keep it), or nil.
func byName[T any, P interface {
	*T
	itemName() string
}](items []T, name string) *T {
	var found *T
	for i := range items {
		if P(&items[i]).itemName() == name {
			found = &items[i]
		}
	}
	return found
}

// LoadKubeconfig reads the current context of a kubeconfig file as
// clientcmd does: relative file names are relative to the file's
// directory; a tokenFile is preferred to a token; two sources of one thing
// (a certificate as data and as a file, a token and a password) are an
// error. An exec credential plugin is run once, here (execCredentials).
// The oidc auth-provider is supported as client-go supports it: a valid
// id-token is used, an expired one is refreshed with the refresh-token and
// the new tokens are written back to the file (oidcToken); any other
// auth-provider fails, as in client-go. Errors name the file and the key
// (at most a file name, a command or the identity provider's host and
// path besides), never a token or a secret.
func LoadKubeconfig(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	var kc kubeconfig
	if err := yaml.Unmarshal(raw, &kc); err != nil {
		// The YAML parser may quote the file; keep only its first line.
		return nil, fmt.Errorf("kubeconfig %s: cannot parse it: %s", path, firstLine(err.Error()))
	}
	cfg, err := kc.config(path)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	return cfg, nil
}

// config reads the current context; path is the kubeconfig's (relative file
// names are relative to its directory, and an auth-provider writes to it).
func (kc *kubeconfig) config(path string) (*Config, error) {
	if kc.CurrentContext == "" {
		return nil, errors.New("current-context is not set")
	}
	current := byName(kc.Contexts, kc.CurrentContext)
	if current == nil {
		return nil, fmt.Errorf("current-context %q: no such context", kc.CurrentContext)
	}
	ctx := current.Context
	cluster := byName(kc.Clusters, ctx.Cluster)
	if cluster == nil {
		return nil, fmt.Errorf("context %q: cluster %q: no such cluster", kc.CurrentContext, ctx.Cluster)
	}
	cfg := &Config{Header: http.Header{}}
	tc, ca, useTLS, err := cluster.transport(cfg, filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	if ctx.User != "" {
		user := byName(kc.Users, ctx.User)
		if user == nil {
			return nil, fmt.Errorf("context %q: user %q: no such user", kc.CurrentContext, ctx.User)
		}
		c := &cluster.Cluster
		info := &execCluster{Server: c.Server, TLSServerName: c.TLSServerName,
			InsecureSkipTLSVerify: c.InsecureSkipTLSVerify, CertificateAuthorityData: ca, ProxyURL: c.ProxyURL}
		withCert, err := user.credentials(cfg, tc, path, info)
		if err != nil {
			return nil, err
		}
		useTLS = useTLS || withCert
	}
	cfg.Host = cluster.Cluster.Server
	if !strings.Contains(cfg.Host, "://") {
		// A bare host:port, as clientcmd takes it.
		scheme := "http://"
		if useTLS {
			scheme = "https://"
		}
		cfg.Host = scheme + cfg.Host
	}
	if strings.HasPrefix(cfg.Host, "https://") {
		cfg.TLS = tc
	}
	return cfg, nil
}

// transport reads how to reach the cluster: its TLS settings and CA (also
// returned as PEM, for an exec plugin that asks), and its proxy, into
// cfg.Proxy. useTLS says the settings imply https for a bare host:port.
func (nc *kcCluster) transport(cfg *Config, dir string) (tc *tls.Config, ca []byte, useTLS bool, err error) {
	cluster := &nc.Cluster
	where := fmt.Sprintf("cluster %q", nc.Name)
	if cluster.Server == "" {
		return nil, nil, false, fmt.Errorf("%s: server is not set", where)
	}
	tc = &tls.Config{ServerName: cluster.TLSServerName, InsecureSkipVerify: cluster.InsecureSkipTLSVerify} //nolint:gosec // the kubeconfig asks for it
	useTLS = cluster.InsecureSkipTLSVerify
	ca, err = either(where, "certificate-authority", cluster.CertificateAuthorityData, cluster.CertificateAuthority, dir)
	if err != nil {
		return nil, nil, false, err
	}
	if ca != nil {
		if cluster.InsecureSkipTLSVerify {
			return nil, nil, false, fmt.Errorf("%s: certificate-authority and insecure-skip-tls-verify are both set", where)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(ca) {
			return nil, nil, false, fmt.Errorf("%s: certificate-authority holds no PEM certificate", where)
		}
		useTLS = true
	}
	if cluster.ProxyURL != "" {
		u, err := url.Parse(cluster.ProxyURL)
		if err != nil {
			return nil, nil, false, fmt.Errorf("%s: proxy-url: not a URL", where)
		}
		cfg.Proxy = http.ProxyURL(u)
	}
	return tc, ca, useTLS, nil
}

// credentials reads the user's credentials: the Authorization and
// Impersonate-* headers into cfg, a client certificate into tc (withCert
// true). path is the kubeconfig's.
func (nu *kcUser) credentials(cfg *Config, tc *tls.Config, path string, info *execCluster) (withCert bool, err error) {
	u := &nu.User
	where := fmt.Sprintf("user %q", nu.Name)
	dir := filepath.Dir(path)
	cert, err := either(where, "client-certificate", u.ClientCertificateData, u.ClientCertificate, dir)
	if err != nil {
		return false, err
	}
	key, err := either(where, "client-key", u.ClientKeyData, u.ClientKey, dir)
	if err != nil {
		return false, err
	}
	// The credential last: it may run a plugin or ask an identity provider.
	token, execCert, err := nu.bearer(path, info)
	if err != nil {
		return false, fmt.Errorf("%s: %w", where, err)
	}
	if token != "" && (u.Username != "" || u.Password != "") {
		return false, fmt.Errorf("%s: a token and username/password are both set", where)
	}
	switch {
	case token != "":
		cfg.Header.Set("Authorization", "Bearer "+token)
	case u.Username != "" || u.Password != "":
		r := &http.Request{Header: http.Header{}}
		r.SetBasicAuth(u.Username, u.Password)
		cfg.Header.Set("Authorization", r.Header.Get("Authorization"))
	}
	if execCert != nil {
		tc.Certificates = []tls.Certificate{*execCert}
		withCert = true
	}
	if cert != nil || key != nil {
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			// The error names no key material.
			return false, fmt.Errorf("%s: client-certificate and client-key: %w", where, err)
		}
		tc.Certificates = []tls.Certificate{pair}
		withCert = true
	}
	impersonate(cfg.Header, u.Impersonate, u.ImpersonateUID, u.ImpersonateGroups, u.ImpersonateUserExtra)
	return withCert, nil
}

// bearer returns the user's bearer token: its tokenFile's or its token, or
// what its auth-provider or exec plugin gives (which may be a client
// certificate instead). As in client-go: an auth-provider with an exec
// plugin is refused (clientcmd's validation); a token or username of the
// kubeconfig is sent instead of an auth-provider's token, whose
// configuration must still be valid (client-go builds the provider and then
// never asks it); an exec plugin is not run when the kubeconfig has a
// token, a username or a client certificate (client-go's exec
// authenticator steps aside), but its apiVersion is checked. A client
// certificate goes with an auth-provider's token.
func (nu *kcUser) bearer(path string, info *execCluster) (token string, execCert *tls.Certificate, err error) {
	u := &nu.User
	token = u.Token
	if u.TokenFile != "" {
		b, err := os.ReadFile(resolve(filepath.Dir(path), u.TokenFile))
		if err != nil {
			return "", nil, fmt.Errorf("tokenFile: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	own := token != "" || u.Username != "" || u.Password != ""
	switch {
	case u.AuthProvider != nil && u.Exec != nil:
		return "", nil, errors.New("auth-provider and exec are both set")
	case u.AuthProvider != nil && own:
		return token, nil, checkAuthProvider(u.AuthProvider)
	case u.AuthProvider != nil:
		token, err = authProviderToken(u.AuthProvider, path, nu.Name)
		return token, nil, err
	case u.Exec != nil && (own || len(u.ClientCertificateData) > 0 || u.ClientCertificate != ""):
		return token, nil, checkExecAPIVersion(u.Exec)
	case u.Exec != nil:
		return execCredentials(u.Exec, filepath.Dir(path), info)
	}
	return token, nil, nil
}

// impersonate sets the Impersonate-* headers a kubeconfig user asks for.
func impersonate(h http.Header, user, uid string, groups []string, extra map[string][]string) {
	if user != "" {
		h.Set("Impersonate-User", user)
	}
	if uid != "" {
		h.Set("Impersonate-Uid", uid)
	}
	for _, g := range groups {
		h.Add("Impersonate-Group", g)
	}
	for k, vs := range extra {
		for _, v := range vs {
			h.Add("Impersonate-Extra-"+url.PathEscape(k), v)
		}
	}
}

// either reads a kubeconfig item given as data or as a file, not both.
func either(where, key string, data []byte, file, dir string) ([]byte, error) {
	switch {
	case len(data) > 0 && file != "":
		return nil, fmt.Errorf("%s: %s and %s-data are both set", where, key, key)
	case len(data) > 0:
		return data, nil
	case file != "":
		b, err := os.ReadFile(resolve(dir, file))
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", where, key, err)
		}
		return b, nil
	}
	return nil, nil
}

func resolve(dir, file string) string {
	if filepath.IsAbs(file) {
		return file
	}
	return filepath.Join(dir, file)
}
