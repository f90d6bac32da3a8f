package options

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/plexus-cni/plexus/internal/cliflags"
	"github.com/plexus-cni/plexus/internal/logging"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaultsFromEnvironment(t *testing.T) {
	o, err := Parse(nil, env(map[string]string{"NODE_NAME": "n1", "KUBERNETES_SERVICE_HOST": "fd00::1",
		"KUBERNETES_SERVICE_PORT": "443"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.NodeName != "n1" || o.APIServer != "https://[fd00::1]:443" || o.Concurrency != 16 || o.ConfName != "00-plexus.conflist" ||
		!o.ServeIPAM || o.IPAMConcurrency != 32 || o.IPAMNamespace != "kube-system" {
		t.Errorf("defaults: %+v", o)
	}
}

// A flag on the command line wins over the file, the file over defaults.
func TestFileThenFlags(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plexusd.json")
	if err := os.WriteFile(path, []byte(`{"nodeName":"from-file","concurrency":4,"queueLength":8,
		"pluginConfig":{"multusNamespace":"plexus"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := Parse([]string{"--concurrency=2", "--config=" + path}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.NodeName != "from-file" || o.Concurrency != 2 || o.QueueLength != 8 || o.PluginConfig["multusNamespace"] != "plexus" {
		t.Errorf("options: %+v", o)
	}
}

func TestInvalid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plexusd.json")
	if err := os.WriteFile(path, []byte(`{"nodeName":"n","concurency":4}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "nodeName"},
		{[]string{"--node-name=n", "--concurrency=0"}, "concurrency"},
		{[]string{"--node-name=n", "--conf-name=a/b.conflist"}, "confName"},
		{[]string{"--node-name=n", "--log-level=loud"}, "logLevel"},
		{[]string{"--node-name=n", "--ipam-concurrency=0"}, "ipamConcurrency"},
		{[]string{"--node-name=n", "--ipam-queue-length=-1"}, "ipamQueueLength"},
		{[]string{"--node-name=n", "--ipam-kube-api-qps=0"}, "ipamKubeApiQps"},
		{[]string{"--node-name=n", "--ipam-kube-api-burst=0"}, "ipamKubeApiBurst"},
		{[]string{"--node-name=n", "--dhcp-daemon=sometimes"}, "dhcpDaemon"},
		{[]string{"--node-name=n", "--dhcp-socket=run/dhcp.sock"}, "dhcpSocket"},
		{[]string{"--node-name=n", "--dhcp-binary=dhcp"}, "dhcpBinary"},
		{[]string{"--config=" + path}, "concurency"},
	} {
		_, err := Parse(tc.args, env(nil), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one naming %s", tc.args, err, tc.want)
		}
	}
}

// TestLogLevels: plexusd accepts every level name of internal/logging.
func TestLogLevels(t *testing.T) {
	for _, name := range logging.LevelNames() {
		if _, err := Parse([]string{"--node-name=n", "--log-level=" + name}, env(nil), io.Discard); err != nil {
			t.Errorf("--log-level=%s: %v", name, err)
		}
	}
}

// plexus-ipam's defaults follow confDir unless ipamConfDir says where;
// ipamDefaults=false turns them off.
func TestIPAMDir(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "/etc/cni/net.d/plexus-ipam.d"},
		{[]string{"--conf-dir=/etc/kubernetes/cni/net.d"}, "/etc/kubernetes/cni/net.d/plexus-ipam.d"},
		{[]string{"--ipam-conf-dir=/srv/ipam"}, "/srv/ipam"},
		{[]string{"--ipam-defaults=false"}, ""},
	} {
		o, err := Parse(append([]string{"--node-name=n"}, tc.args...), env(nil), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if got := o.IPAMDir(); got != tc.want {
			t.Errorf("%v: IPAMDir() = %q, want %q", tc.args, got, tc.want)
		}
	}
}

// takeOverMultus names plexus's file so that it sorts before Multus's,
// unless confName is given (as a flag or in the file).
func TestTakeOverMultusConfName(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plexusd.json")
	if err := os.WriteFile(path, []byte(`{"nodeName":"n","takeOverMultus":true,"confName":"00-plexus.conflist"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--node-name=n"}, "00-plexus.conflist"},
		{[]string{"--node-name=n", "--take-over-multus"}, "00-00-plexus.conflist"},
		{[]string{"--node-name=n", "--take-over-multus", "--conf-name=00-0-mine.conflist"}, "00-0-mine.conflist"},
		{[]string{"--config=" + path}, "00-plexus.conflist"},
	} {
		o, err := Parse(tc.args, env(nil), io.Discard)
		if err != nil || o.ConfName != tc.want {
			t.Errorf("%v: confName %v (%v), want %s", tc.args, o, err, tc.want)
		}
		if o != nil && "00-multus.conf" < o.ConfName && o.TakeOverMultus && tc.want == "00-00-plexus.conflist" {
			t.Errorf("%v: %s does not sort before 00-multus.conf", tc.args, o.ConfName)
		}
	}
}

// `plexusd uninstall` needs no node name; run still does.
func TestUninstallNeedsNoNodeName(t *testing.T) {
	o, err := ParseUninstall([]string{"--conf-dir=/tmp/x"}, env(nil), io.Discard)
	if err != nil || o.ConfDir != "/tmp/x" || o.ConfName != "00-plexus.conflist" {
		t.Fatalf("ParseUninstall without a node name: %+v, %v", o, err)
	}
	if _, err := ParseUninstall([]string{"--conf-name=a/b"}, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "confName") {
		t.Errorf("ParseUninstall with a bad confName: %v", err)
	}
	if _, err := Parse([]string{"--conf-dir=/tmp/x"}, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "nodeName") {
		t.Errorf("Parse without a node name: %v, want an error naming nodeName", err)
	}
}

// The previous release's command lines (camelCase flags, single dash) parse
// to the options of the new spellings, with a warning naming each new one.
func TestOldSpellings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plexusd.json")
	if err := os.WriteFile(path, []byte(`{"nodeName":"from-file","concurrency":4}`), 0o600); err != nil {
		t.Fatal(err)
	}
	old := []string{"-config=" + path, "-nodeName", "n", "-confDir=/c", "--binDir=/b", "-socketPath", "/s/plexusd.sock",
		"-apiServer=https://a:6443", "-serveIPAM=false", "-takeOverMultus", "-resyncSeconds", "5", "-logLevel=debug",
		"-pluginKubeconfig=", "-concurrency=2", "-pprof"}
	current := []string{"--config=" + path, "--node-name", "n", "--conf-dir=/c", "--bin-dir=/b", "--socket-path", "/s/plexusd.sock",
		"--api-server=https://a:6443", "--serve-ipam=false", "--take-over-multus", "--resync-seconds", "5", "--log-level=debug",
		"--plugin-kubeconfig=", "--concurrency=2", "--pprof"}
	var warnings bytes.Buffer
	got, err := Parse(old, env(nil), &warnings)
	if err != nil {
		t.Fatal(err)
	}
	var none bytes.Buffer
	want, err := Parse(current, env(nil), &none)
	if err != nil || none.Len() > 0 {
		t.Fatalf("new spellings: %v, warnings %q", err, none.String())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("old spellings: %+v\nnew spellings: %+v", got, want)
	}
	if want.NodeName != "n" || want.Concurrency != 2 || want.ServeIPAM || want.ConfName != "00-00-plexus.conflist" || want.PluginKubeconfig != "" {
		t.Errorf("new spellings: %+v", want)
	}
	lines := strings.Split(strings.TrimSpace(warnings.String()), "\n")
	if len(lines) != len(old)-3 { // 3 values
		t.Errorf("%d warnings, want %d:\n%s", len(lines), len(old)-3, warnings.String())
	}
	for _, w := range []string{"flag -apiServer is deprecated and will be removed in a future release; use --api-server",
		"flag --binDir is deprecated", "use --bin-dir", "flag -config is deprecated", "use --serve-ipam\n", "flag -pprof is deprecated"} {
		if !strings.Contains(warnings.String(), w) {
			t.Errorf("warnings lack %q:\n%s", w, warnings.String())
		}
	}
}

// Every flag is a key of the file (--foo-bar is fooBar) and every key a
// flag, except those of the lists.
func TestEveryFlagHasAKey(t *testing.T) {
	fileOnly := map[string]bool{"pluginConfig": true}
	flagOnly := map[string]bool{"config": true}
	keys := map[string]string{} // flag name → key
	rt := reflect.TypeOf(Options{})
	for i := range rt.NumField() {
		k, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		if k == "" || k == "-" || fileOnly[k] {
			continue
		}
		if prev, dup := keys[cliflags.Kebab(k)]; dup {
			t.Errorf("keys %s and %s have the same flag", prev, k)
		}
		keys[cliflags.Kebab(k)] = k
	}
	o := Defaults(env(nil))
	fs := flagSet(&o, io.Discard).Flags()
	fs.VisitAll(func(f *pflag.Flag) {
		if _, ok := keys[f.Name]; !ok && !flagOnly[f.Name] {
			t.Errorf("flag --%s has no key in the configuration file", f.Name)
		}
	})
	for name, k := range keys {
		if fs.Lookup(name) == nil {
			t.Errorf("key %s has no flag --%s", k, name)
		}
	}
}

// --help lists the flags under group headings.
func TestPrintDefaults(t *testing.T) {
	var out bytes.Buffer
	PrintDefaults(&out, env(nil))
	last := -1
	for _, h := range []string{"Configuration file flags:", "Node flags:", "Kubernetes flags:", "CNI requests flags:", "IPAM flags:", "Logging and metrics flags:"} {
		i := strings.Index(out.String(), "\n"+h+"\n")
		if h == "Configuration file flags:" && strings.HasPrefix(out.String(), h) {
			i = 0
		}
		if i <= last {
			t.Errorf("heading %q missing or out of order:\n%s", h, out.String())
		}
		last = i
	}
	if !strings.Contains(out.String(), "--api-server string") || strings.Contains(out.String(), "apiServer") {
		t.Errorf("help:\n%s", out.String())
	}
}
