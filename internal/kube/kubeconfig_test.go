package kube

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// writeKubeconfig writes a kubeconfig whose current context "c" joins
// cluster "k" (the given cluster keys) and user "u" (the given user keys).
func writeKubeconfig(t *testing.T, dir, cluster, user string) string {
	t.Helper()
	kc := "apiVersion: v1\nkind: Config\ncurrent-context: c\n" +
		"clusters:\n- name: k\n  cluster:\n" + indent(cluster, "    ") +
		"users:\n- name: u\n  user:\n" + indent(user, "    ") +
		"contexts:\n- name: c\n  context:\n    cluster: k\n    user: u\n"
	path := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func indent(s, by string) string {
	if s == "" {
		return by + "{}\n"
	}
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		b.WriteString(by + l + "\n")
	}
	return b.String()
}

// testPKI is a CA and a client certificate it signed, PEM-encoded.
type testPKI struct {
	ca         *x509.Certificate
	caPEM      []byte
	cert, key  []byte
	clientName string
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "system:node:n1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &testPKI{ca: ca, caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		cert:       pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		key:        pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		clientName: "system:node:n1"}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func TestLoadKubeconfig(t *testing.T) {
	pki := newTestPKI(t)
	dir := t.TempDir()
	for name, content := range map[string][]byte{"ca.crt": pki.caPEM, "client.crt": pki.cert, "client.key": pki.key, "token": []byte("from-file\n")} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("token and CA data", func(t *testing.T) {
		cfg, err := LoadKubeconfig(writeKubeconfig(t, t.TempDir(),
			"server: https://api.example:6443/prefix\ncertificate-authority-data: "+b64(pki.caPEM)+"\ntls-server-name: api.internal",
			"token: abc\nas: someone\nas-groups: [g1, g2]"))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Host != "https://api.example:6443/prefix" || cfg.Header.Get("Authorization") != "Bearer abc" ||
			cfg.Header.Get("Impersonate-User") != "someone" || len(cfg.Header.Values("Impersonate-Group")) != 2 {
			t.Errorf("got host %q, header %v", cfg.Host, cfg.Header)
		}
		if cfg.TLS == nil || cfg.TLS.RootCAs == nil || cfg.TLS.ServerName != "api.internal" || len(cfg.TLS.Certificates) != 0 {
			t.Errorf("TLS %+v: want the CA, the server name and no client certificate", cfg.TLS)
		}
	})
	t.Run("files relative to the kubeconfig, tokenFile before token", func(t *testing.T) {
		cfg, err := LoadKubeconfig(writeKubeconfig(t, dir, "server: https://10.0.0.1\ncertificate-authority: ca.crt",
			"token: inline\ntokenFile: token\nclient-certificate: client.crt\nclient-key: "+filepath.Join(dir, "client.key")))
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Header.Get("Authorization"); got != "Bearer from-file" {
			t.Errorf("Authorization %q, want the tokenFile's token", got)
		}
		if cfg.TLS == nil || len(cfg.TLS.Certificates) != 1 || cfg.TLS.RootCAs == nil {
			t.Errorf("TLS %+v: want the CA file and the client pair", cfg.TLS)
		}
	})
	t.Run("certificate data, bare host", func(t *testing.T) {
		cfg, err := LoadKubeconfig(writeKubeconfig(t, t.TempDir(), "server: 10.0.0.1:6443\ninsecure-skip-tls-verify: true",
			"client-certificate-data: "+b64(pki.cert)+"\nclient-key-data: "+b64(pki.key)))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Host != "https://10.0.0.1:6443" || cfg.TLS == nil || !cfg.TLS.InsecureSkipVerify || len(cfg.TLS.Certificates) != 1 {
			t.Errorf("host %q, TLS %+v", cfg.Host, cfg.TLS)
		}
		if cfg.Header.Get("Authorization") != "" {
			t.Errorf("Authorization %q without a token", cfg.Header.Get("Authorization"))
		}
	})
	t.Run("plain http, basic auth", func(t *testing.T) {
		cfg, err := LoadKubeconfig(writeKubeconfig(t, t.TempDir(), "server: 127.0.0.1:8080", "username: admin\npassword: pw"))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Host != "http://127.0.0.1:8080" || cfg.TLS != nil || !strings.HasPrefix(cfg.Header.Get("Authorization"), "Basic ") {
			t.Errorf("host %q, TLS %v, header %v", cfg.Host, cfg.TLS, cfg.Header)
		}
	})

	const secret = "s3cr3t-t0ken-value"
	for _, tc := range []struct {
		name, cluster, user string
		raw                 string // the whole file, instead of cluster and user
		want                []string
	}{
		{name: "auth-provider gcp", cluster: "server: https://h", user: "auth-provider:\n  name: gcp\n  config:\n    access-token: " + secret,
			want: []string{`user "u"`, `auth-provider "gcp"`, "not supported"}},
		{name: "auth-provider oidc without config", cluster: "server: https://h", user: "auth-provider:\n  name: oidc",
			want: []string{`user "u"`, `auth-provider "oidc"`, "idp-issuer-url is not set"}},
		{name: "no server", cluster: "insecure-skip-tls-verify: true", user: "token: " + secret,
			want: []string{`cluster "k"`, "server is not set"}},
		{name: "CA twice", cluster: "server: https://h\ncertificate-authority: ca.crt\ncertificate-authority-data: " + b64(pki.caPEM), user: "",
			want: []string{"certificate-authority and certificate-authority-data are both set"}},
		{name: "CA and insecure", cluster: "server: https://h\ninsecure-skip-tls-verify: true\ncertificate-authority-data: " + b64(pki.caPEM), user: "",
			want: []string{"certificate-authority and insecure-skip-tls-verify"}},
		{name: "CA not PEM", cluster: "server: https://h\ncertificate-authority-data: " + b64([]byte("nope")), user: "",
			want: []string{"certificate-authority holds no PEM certificate"}},
		{name: "token and password", cluster: "server: https://h", user: "token: " + secret + "\nusername: a\npassword: b",
			want: []string{"a token and username/password are both set"}},
		{name: "missing token file", cluster: "server: https://h", user: "tokenFile: absent-token",
			want: []string{`user "u": tokenFile`, "absent-token"}},
		{name: "key without certificate", cluster: "server: https://h", user: "client-key-data: " + b64(pki.key),
			want: []string{"client-certificate and client-key"}},
		{name: "no current context", raw: "apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user:\n    token: " + secret + "\n",
			want: []string{"current-context is not set"}},
		{name: "unknown context", raw: "current-context: other\nusers:\n- name: u\n  user:\n    token: " + secret + "\n",
			want: []string{`current-context "other": no such context`}},
		{name: "broken YAML", raw: "current-context: c\nusers:\n- name: u\n  user:\n    token: " + secret + "\n  \t: [\n",
			want: []string{"cannot parse it"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			if err := os.WriteFile(filepath.Join(d, "ca.crt"), pki.caPEM, 0o600); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(d, "kubeconfig")
			if tc.raw != "" {
				if err := os.WriteFile(path, []byte(tc.raw), 0o600); err != nil {
					t.Fatal(err)
				}
			} else {
				path = writeKubeconfig(t, d, tc.cluster, tc.user)
			}
			_, err := LoadKubeconfig(path)
			if err == nil {
				t.Fatal("loaded; want an error")
			}
			msg := err.Error()
			for _, w := range append(tc.want, path) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
			if strings.Contains(msg, secret) {
				t.Errorf("error %q carries the token", msg)
			}
		})
	}
}

// credPlugin writes an exec credential plugin into dir: a script that checks
// what client-go's plugins are given (KUBERNETES_EXEC_INFO, the configured
// environment) and then prints out, or fails with code and stderr.
func credPlugin(t *testing.T, dir, out string, code int, stderr string) {
	t.Helper()
	script := "#!/bin/sh\n" +
		"case \"$KUBERNETES_EXEC_INFO\" in *'\"kind\":\"ExecCredential\"'*'\"interactive\":false'*) ;; *) echo \"bad exec info: $KUBERNETES_EXEC_INFO\" >&2; exit 3;; esac\n" +
		"[ \"$FROM_KUBECONFIG\" = yes ] || { echo 'FROM_KUBECONFIG not set' >&2; exit 4; }\n" +
		"echo \"$KUBERNETES_EXEC_INFO\" > \"$(dirname \"$0\")/exec-info\"\n" +
		"cat <<'EOF'\n" + out + "\nEOF\n" +
		"echo '" + stderr + "' >&2\nexit " + strconv.Itoa(code) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "cred.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

func execCred(t *testing.T, apiVersion string, status map[string]string) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"apiVersion": apiVersion, "kind": "ExecCredential", "status": status})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const execUser = "exec:\n  command: ./cred.sh\n  apiVersion: client.authentication.k8s.io/v1\n  provideClusterInfo: true\n" +
	"  installHint: install cred.sh\n  env:\n  - name: FROM_KUBECONFIG\n    value: \"yes\""

// TestLoadKubeconfigExec: an exec credential plugin is run as client-go
// runs it (relative to the kubeconfig, with its env and KUBERNETES_EXEC_INFO,
// never interactive), and what it prints authenticates the requests.
func TestLoadKubeconfigExec(t *testing.T) {
	pki := newTestPKI(t)
	const v1 = "client.authentication.k8s.io/v1"
	t.Run("token", func(t *testing.T) {
		dir := t.TempDir()
		credPlugin(t, dir, execCred(t, v1, map[string]string{"token": "exec-token"}), 0, "")
		cfg, err := LoadKubeconfig(writeKubeconfig(t, dir, "server: https://h:6443", execUser))
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Header.Get("Authorization"); got != "Bearer exec-token" {
			t.Errorf("Authorization %q, want the plugin's token", got)
		}
		info, err := os.ReadFile(filepath.Join(dir, "exec-info"))
		if err != nil || !strings.Contains(string(info), `"server":"https://h:6443"`) {
			t.Errorf("the plugin was given %s (%v), want the cluster's server (provideClusterInfo)", info, err)
		}
	})
	t.Run("certificate", func(t *testing.T) {
		dir := t.TempDir()
		credPlugin(t, dir, execCred(t, v1, map[string]string{"clientCertificateData": string(pki.cert), "clientKeyData": string(pki.key)}), 0, "")
		cfg, err := LoadKubeconfig(writeKubeconfig(t, dir, "server: https://h", execUser))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.TLS == nil || len(cfg.TLS.Certificates) != 1 || cfg.Header.Get("Authorization") != "" {
			t.Errorf("TLS %+v, header %v: want the plugin's certificate and no token", cfg.TLS, cfg.Header)
		}
	})
	// As client-go's exec authenticator, the plugin steps aside for the
	// kubeconfig's own token, password or client certificate.
	t.Run("not run beside another credential", func(t *testing.T) {
		for name, own := range map[string]string{
			"token":       "token: own-token",
			"basic auth":  "username: a\npassword: b",
			"certificate": "client-certificate-data: " + b64(pki.cert) + "\nclient-key-data: " + b64(pki.key),
		} {
			dir := t.TempDir()
			credPlugin(t, dir, "", 1, "the plugin ran")
			cfg, err := LoadKubeconfig(writeKubeconfig(t, dir, "server: https://h", own+"\n"+execUser))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if name == "token" && cfg.Header.Get("Authorization") != "Bearer own-token" {
				t.Errorf("Authorization %q, want the kubeconfig's token", cfg.Header.Get("Authorization"))
			}
		}
	})
	const secret = "s3cr3t-printed-by-the-plugin"
	for _, tc := range []struct {
		name, out, user string
		code            int
		stderr          string
		noPlugin        bool
		want            []string
	}{
		{name: "fails", code: 1, stderr: "no credentials for you", out: secret, want: []string{"./cred.sh", "exit status 1", "no credentials for you"}},
		{name: "prints no ExecCredential", out: "token=" + secret, want: []string{"not an ExecCredential"}},
		{name: "other apiVersion", out: execCred(t, "client.authentication.k8s.io/v1beta1", map[string]string{"token": secret}),
			want: []string{"want an ExecCredential of client.authentication.k8s.io/v1"}},
		{name: "no status", out: `{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential"}`, want: []string{"printed no status"}},
		{name: "key without certificate", out: execCred(t, v1, map[string]string{"clientKeyData": secret}), want: []string{"not both"}},
		{name: "not installed", noPlugin: true, want: []string{"./cred.sh", "install cred.sh"}},
		{name: "interactive", user: "exec:\n  command: ./cred.sh\n  apiVersion: " + v1 + "\n  interactiveMode: Always", want: []string{"interactiveMode Always"}},
		{name: "unknown apiVersion", user: "exec:\n  command: ./cred.sh\n  apiVersion: v0", want: []string{`apiVersion "v0"`}},
		{name: "unknown apiVersion beside a token", user: "token: t\nexec:\n  command: ./cred.sh\n  apiVersion: v0", want: []string{`apiVersion "v0"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if !tc.noPlugin {
				credPlugin(t, dir, tc.out, tc.code, tc.stderr)
			}
			user := execUser
			if tc.user != "" {
				user = tc.user
			}
			_, err := LoadKubeconfig(writeKubeconfig(t, dir, "server: https://h", user))
			if err == nil {
				t.Fatal("loaded; want an error")
			}
			for _, w := range append(tc.want, `user "u"`) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q carries what the plugin printed or the token", err)
			}
		})
	}
}
