package install

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/plexus-cni/plexus/internal/logging"
	"github.com/plexus-cni/plexus/pkg/ipam/config"
)

// serviceAccount writes a token and CA bundle and returns options
// rendering a kubeconfig from them.
func serviceAccount(t *testing.T, token string) *KubeconfigOptions {
	t.Helper()
	sa := t.TempDir()
	o := &KubeconfigOptions{Server: "https://192.0.2.10:6443", TokenFile: filepath.Join(sa, "token"), CAFile: filepath.Join(sa, "ca.crt")}
	write(t, o.CAFile, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	write(t, o.TokenFile, token+"\n")
	return o
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return fi.Mode().Perm()
}

// plexusd writes what plexus-ipam reads when a NAD names no store: the
// flat file at the path the binary looks for, naming a kubeconfig with the
// service account's token, both 0600; the token's rotation rewrites the
// kubeconfig; plexus-ipam's own loader then finds the kubeconfig.
func TestIPAMDefaultsWritten(t *testing.T) {
	in, dir := newInstaller(t)
	write(t, filepath.Join(dir, "10-flannel.conflist"), flannel)
	sa := serviceAccount(t, "first-token-value")
	in.IPAM = &IPAMDefaults{Dir: filepath.Join(dir, "plexus-ipam.d"), Kubeconfig: sa}
	if st := in.Sync(); !st.Ready() {
		t.Fatalf("state %+v", st)
	}
	conf := filepath.Join(dir, "plexus-ipam.d", "plexus-ipam.conf")
	kc := filepath.Join(dir, "plexus-ipam.d", "plexus-ipam.kubeconfig")
	for _, p := range []string{conf, kc} {
		if m := mode(t, p); m != 0o600 {
			t.Errorf("%s mode %v, want 0600", p, m)
		}
	}
	// The binary's loader with this directory as its default reads it.
	l := config.Loader{Files: config.OSFiles{}, DefaultPaths: []string{conf}}
	c, err := l.Load([]byte(`{"cniVersion":"1.0.0","name":"n","ipam":{"type":"plexus-ipam","range":"198.51.100.0/24"}}`), config.Args{})
	if err != nil || c.Kubeconfig != kc {
		t.Fatalf("plexus-ipam reads kubeconfig %q (%v), want %q", c.Kubeconfig, err, kc)
	}
	for _, token := range []string{"first-token-value", "second-token-value"} {
		write(t, sa.TokenFile, token+"\n")
		if st := in.Sync(); !st.Ready() {
			t.Fatalf("state %+v", st)
		}
		cfg, err := clientcmd.LoadFromFile(kc)
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.AuthInfos[cfg.Contexts[cfg.CurrentContext].AuthInfo].Token; got != token {
			t.Errorf("kubeconfig token %q, want %q", got, token)
		}
	}
	write(t, sa.TokenFile, "")
	if st := in.Sync(); st.Ready() || !strings.Contains(st.IPAMError, sa.TokenFile) {
		t.Errorf("empty token: state %+v, want unready naming %s", st, sa.TokenFile)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "plexus-ipam.d", ".*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// Without a service account (plexusd outside a cluster) the flat file
// names the kubeconfig plexusd was given; with neither, nothing is written.
func TestIPAMDefaultsNameAGivenKubeconfig(t *testing.T) {
	in, dir := newInstaller(t)
	write(t, filepath.Join(dir, "10-flannel.conflist"), flannel)
	ipamDir := filepath.Join(dir, "plexus-ipam.d")
	in.IPAM = &IPAMDefaults{Dir: ipamDir}
	if st := in.Sync(); !st.Ready() {
		t.Fatalf("state %+v", st)
	}
	absent(t, ipamDir)
	in.IPAM.KubeconfigPath = "/srv/admin.kubeconfig"
	if st := in.Sync(); !st.Ready() {
		t.Fatalf("state %+v", st)
	}
	raw, err := os.ReadFile(filepath.Join(ipamDir, IPAMConfName))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Kubernetes struct {
			Kubeconfig string `json:"kubeconfig"`
		} `json:"kubernetes"`
	}
	if err := json.Unmarshal(raw, &got); err != nil || got.Kubernetes.Kubeconfig != "/srv/admin.kubeconfig" {
		t.Errorf("flat file %s (%v)", raw, err)
	}
	absent(t, filepath.Join(ipamDir, IPAMKubeconfigName))
}

// plexusBinary copies this test binary (built from plexus's module) to
// path: a stand-in for plexus-ipam that PlexusBinary recognises.
func plexusBinary(t *testing.T, path string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	copyFile(t, exe, path)
}

func TestPlexusBinary(t *testing.T) {
	dir := t.TempDir()
	ours := filepath.Join(dir, "ours")
	plexusBinary(t, ours)
	script := filepath.Join(dir, "script")
	write(t, script, "#!/bin/sh\nexit 0\n")
	for path, want := range map[string]bool{ours: true, script: false} {
		if got, err := PlexusBinary(path); got != want || err != nil {
			t.Errorf("PlexusBinary(%s) = %v, %v; want %v", filepath.Base(path), got, err, want)
		}
	}
	if _, err := PlexusBinary(filepath.Join(dir, "absent")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("absent file: %v", err)
	}
}

// The whereabouts alias is installed when the name is free, kept a copy of
// plexus-ipam, and refused (unready, nothing written) while another
// binary of that name is there: a real Whereabouts is never overwritten.
func TestWhereaboutsAlias(t *testing.T) {
	in, dir := newInstaller(t)
	log := &strings.Builder{}
	in.Log = logging.New(logging.Options{Level: logging.Debug, Stderr: log})
	write(t, filepath.Join(dir, "10-flannel.conflist"), flannel)
	bin := t.TempDir()
	src, target := filepath.Join(bin, "plexus-ipam"), filepath.Join(bin, WhereaboutsName)
	plexusBinary(t, src)
	kc := filepath.Join(dir, "whereabouts.d", "whereabouts.kubeconfig")
	sa := serviceAccount(t, "alias-token-value")
	sa.Path = kc
	in.Alias = &Alias{Source: src, Target: target, Kubeconfig: sa}
	if st := in.Sync(); !st.Ready() {
		t.Fatalf("free name: state %+v", st)
	}
	if !sameFile(t, src, target) || mode(t, target) != 0o755 || mode(t, kc) != 0o600 {
		t.Fatalf("alias not installed as a 0755 copy with a 0600 kubeconfig")
	}
	// An upgrade of plexus-ipam replaces the alias too.
	data, _ := os.ReadFile(src)
	if err := os.WriteFile(src, append(data, 0), 0o755); err != nil {
		t.Fatal(err)
	}
	if st := in.Sync(); !st.Ready() || !sameFile(t, src, target) {
		t.Fatalf("after an upgrade: state %+v, alias current %v", st, sameFile(t, src, target))
	}
	// Whereabouts installs its binary: plexusd leaves it alone and says so.
	real := "#!/bin/sh\necho whereabouts\n"
	write(t, target, real)
	if err := os.Remove(kc); err != nil {
		t.Fatal(err)
	}
	st := in.Sync()
	if st.Ready() || !strings.Contains(st.AliasError, target) || !strings.Contains(st.AliasError, "Whereabouts is installed") {
		t.Errorf("foreign whereabouts: state %+v, want unready naming %s", st, target)
	}
	if got, _ := os.ReadFile(target); string(got) != real {
		t.Errorf("the foreign binary was replaced")
	}
	absent(t, kc)
	if !strings.Contains(log.String(), "whereabouts alias not installed") {
		t.Errorf("log %q does not report the refusal", log.String())
	}
	// Whereabouts removed: the alias comes back.
	if err := os.Remove(target); err != nil {
		t.Fatal(err)
	}
	if st := in.Sync(); !st.Ready() || !sameFile(t, src, target) {
		t.Errorf("after Whereabouts left: state %+v", st)
	}
}

func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	da, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	db, err := os.ReadFile(b)
	return err == nil && string(da) == string(db)
}
