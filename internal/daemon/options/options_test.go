package options

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
		{[]string{"--nodeName=n", "--concurrency=0"}, "concurrency"},
		{[]string{"--nodeName=n", "--confName=a/b.conflist"}, "confName"},
		{[]string{"--nodeName=n", "--logLevel=loud"}, "logLevel"},
		{[]string{"--nodeName=n", "--ipamConcurrency=0"}, "ipamConcurrency"},
		{[]string{"--nodeName=n", "--ipamQueueLength=-1"}, "ipamQueueLength"},
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
		if _, err := Parse([]string{"--nodeName=n", "--logLevel=" + name}, env(nil), io.Discard); err != nil {
			t.Errorf("--logLevel=%s: %v", name, err)
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
		{[]string{"--confDir=/etc/kubernetes/cni/net.d"}, "/etc/kubernetes/cni/net.d/plexus-ipam.d"},
		{[]string{"--ipamConfDir=/srv/ipam"}, "/srv/ipam"},
		{[]string{"--ipamDefaults=false"}, ""},
	} {
		o, err := Parse(append([]string{"--nodeName=n"}, tc.args...), env(nil), io.Discard)
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
		{[]string{"--nodeName=n"}, "00-plexus.conflist"},
		{[]string{"--nodeName=n", "--takeOverMultus"}, "00-00-plexus.conflist"},
		{[]string{"--nodeName=n", "--takeOverMultus", "--confName=00-0-mine.conflist"}, "00-0-mine.conflist"},
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
	o, err := ParseUninstall([]string{"--confDir=/tmp/x"}, env(nil), io.Discard)
	if err != nil || o.ConfDir != "/tmp/x" || o.ConfName != "00-plexus.conflist" {
		t.Fatalf("ParseUninstall without a node name: %+v, %v", o, err)
	}
	if _, err := ParseUninstall([]string{"--confName=a/b"}, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "confName") {
		t.Errorf("ParseUninstall with a bad confName: %v", err)
	}
	if _, err := Parse([]string{"--confDir=/tmp/x"}, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "nodeName") {
		t.Errorf("Parse without a node name: %v, want an error naming nodeName", err)
	}
}
