package config

import (
	"strings"
	"testing"

	"github.com/plexus-cni/plexus/internal/logging"
)

func TestParseMultusConfigChangesOnlyType(t *testing.T) {
	// A Multus thin-plugin configuration as published, with "type" changed.
	c, err := Parse([]byte(`{
		"cniVersion": "0.3.1", "name": "multus-cni-network", "type": "plexus",
		"kubeconfig": "/etc/cni/net.d/multus.d/multus.kubeconfig",
		"clusterNetwork": "/etc/cni/net.d/10-flannel.conflist",
		"defaultNetworks": ["sidecar"], "confDir": "/etc/cni/multus/net.d",
		"cniDir": "/var/lib/cni/multus", "binDir": "/opt/cni/bin",
		"namespaceIsolation": true, "globalNamespaces": "default,shared",
		"systemNamespaces": ["kube-system", "infra"], "multusNamespace": "kube-system",
		"readinessindicatorfile": "/run/flannel/subnet.env",
		"logFile": "/var/log/multus.log", "logLevel": "debug", "logToStderr": false,
		"capabilities": {"portMappings": true, "bandwidth": true},
		"runtimeConfig": {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.ClusterNetwork != "/etc/cni/net.d/10-flannel.conflist" || c.CNIDir != "/var/lib/cni/multus" ||
		!c.NamespaceIsolation || strings.Join(c.GlobalNamespaces, ",") != "default,shared" ||
		!c.IsSystemNamespace("infra") || !c.IsGlobalNamespace("shared") || c.IsGlobalNamespace("other") ||
		*c.LogToStderr || !c.Capabilities["portMappings"] || c.RuntimeConfig["portMappings"] == nil {
		t.Fatalf("parsed %+v", c)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse([]byte(`{"cniVersion":"1.0.0","name":"p","type":"plexus","clusterNetwork":"cbr0"}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.ConfDir != DefaultConfDir || c.CNIDir != DefaultCNIDir || c.BinDir != DefaultBinDir ||
		c.MultusNamespace != "kube-system" || !c.IsGlobalNamespace("default") || !c.IsSystemNamespace("kube-system") ||
		c.AttachConcurrency != DefaultAttachConcurrency {
		t.Fatalf("defaults not applied: %+v", c)
	}
	l, err := Parse([]byte(`{"type":"plexus","clusterNetwork":"x","globalNamespaces":["a","b"]}`))
	if err != nil || strings.Join(l.GlobalNamespaces, ",") != "a,b" {
		t.Fatalf("list form: %v %v", l, err)
	}
}

func TestParseErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"type":"plexus"}`, "clusterNetwork: one of clusterNetwork or delegates is required"},
		{`{"type":"plexus","clusterNetwork":"x","logLevel":"loud"}`, `logLevel: invalid value "loud"`},
		{`{"type":"plexus","clusterNetwork":"x","attachConcurrency":-1}`, `attachConcurrency: invalid value "-1"`},
		{`{"type":"plexus","clusterNetwork":"x","readinessTimeoutSeconds":9223372037}`, `readinessTimeoutSeconds: invalid value "9223372037": must be 1 or more and at most 9223372036`},
		{`{"type":"plexus","clusterNetwork":"x","globalNamespaces":7}`, "globalNamespaces"},
		{`{"type":`, "cannot decode the plexus configuration"},
	} {
		_, err := Parse([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%s) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

// TestLogLevels: the plugin accepts every level name of internal/logging.
func TestLogLevels(t *testing.T) {
	for _, name := range logging.LevelNames() {
		if _, err := Parse([]byte(`{"type":"plexus","clusterNetwork":"x","logLevel":"` + name + `"}`)); err != nil {
			t.Errorf("logLevel %q: %v", name, err)
		}
	}
}
