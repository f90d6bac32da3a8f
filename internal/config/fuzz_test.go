package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/plexus-cni/plexus/internal/jsontest"
	"github.com/plexus-cni/plexus/pkg/fielderr"
)

// Configurations as they are published for Multus with "type" changed,
// as plexusd's installer writes them, and malformed ones.
var configSeeds = []string{
	`{"cniVersion":"1.0.0","name":"plexus-network","type":"plexus","kubeconfig":"/etc/cni/net.d/plexus.d/plexus.kubeconfig",` +
		`"clusterNetwork":"/etc/cni/net.d/10-flannel.conflist","capabilities":{"portMappings":true}}`,
	`{"cniVersion":"0.3.1","name":"multus-cni-network","type":"plexus","kubeconfig":"/etc/cni/net.d/multus.d/multus.kubeconfig",` +
		`"clusterNetwork":"cbr0","defaultNetworks":["sidecar"],"confDir":"/etc/cni/multus/net.d","cniDir":"/var/lib/cni/multus",` +
		`"binDir":"/opt/cni/bin","namespaceIsolation":true,"globalNamespaces":"default,shared","systemNamespaces":["kube-system","infra"],` +
		`"multusNamespace":"kube-system","readinessindicatorfile":"/run/flannel/subnet.env","logFile":"/var/log/multus.log",` +
		`"logLevel":"debug","logToStderr":false,"capabilities":{"portMappings":true,"bandwidth":true},` +
		`"runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]}}`,
	`{"cniVersion":"0.3.1","name":"multus-cni-network","type":"plexus","delegates":[{"cniVersion":"0.3.1","name":"cbr0",` +
		`"plugins":[{"type":"flannel","delegate":{"isDefaultGateway":true}}]}],"kubeconfig":"/etc/cni/net.d/multus.d/multus.kubeconfig"}`,
	`{"cniVersion":"1.0.0","name":"plexus","type":"plexus","clusterNetwork":"cbr0","daemonSocket":"/run/plexus/plexusd.sock",` +
		`"cniDir":"/var/lib/cni/plexus","binDir":"/opt/cni/bin","attachConcurrency":1,"readinessTimeoutSeconds":10,"globalNamespaces":["a","b"]}`,
	`{"type":"plexus","clusterNetwork":"x","logLevel":"loud"}`, `{"type":"plexus","clusterNetwork":"x","attachConcurrency":-1}`,
	`{"type":"plexus","clusterNetwork":"x","globalNamespaces":7}`,
	`{"type":"plexus","delegates":[null]}`, `{"type":"plexus"}`, `{"type":`, `null`, `[]`,
}

func FuzzParse(f *testing.F) {
	for _, s := range configSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, stdin []byte) {
		c, err := Parse(stdin)
		if err != nil {
			// Not JSON at all: an error wrapping the syntax error (code 6);
			// otherwise an error naming the field (code 7).
			var fe *fielderr.Error
			var syn *json.SyntaxError
			named := errors.As(err, &fe) && fe.Field != ""
			notJSON := errors.As(err, &syn) && strings.Contains(err.Error(), "plexus configuration")
			if c != nil || !(named || notJSON) {
				t.Fatalf("Parse(%q) = %v, %v; want no configuration and an error naming a field, or saying it is not JSON", stdin, c, err)
			}
			return
		}
		if !bytes.Equal(c.Raw, stdin) {
			t.Fatalf("Raw = %q, want the input %q", c.Raw, stdin)
		}
		checkInvariants(t, c)
		// Writing out the defaults Parse applied changes nothing.
		explicit := withDefaults(t, c)
		again, err := Parse(explicit)
		if err != nil {
			t.Fatalf("with its defaults written out, %q does not parse: %v", explicit, err)
		}
		if diff := cmp.Diff(c, again, jsontest.Comparer(), cmpopts.IgnoreFields(NetConf{}, "Raw")); diff != "" {
			t.Fatalf("writing out the defaults of %q changed it (-first +second):\n%s", stdin, diff)
		}
	})
}

// withDefaults returns c.Raw with the keys that have defaults appended,
// set to what Parse made of them. The last of a key's occurrences counts,
// whatever its case, so the appended ones win.
func withDefaults(t *testing.T, c *NetConf) []byte {
	t.Helper()
	keys, err := json.Marshal(map[string]any{
		"confDir": c.ConfDir, "cniDir": c.CNIDir, "binDir": c.BinDir, "multusNamespace": c.MultusNamespace,
		"globalNamespaces": []string(c.GlobalNamespaces), "systemNamespaces": c.SystemNamespaces,
		"attachConcurrency": c.AttachConcurrency, "readinessTimeoutSeconds": c.ReadinessTimeoutSeconds,
	})
	if err != nil {
		t.Fatal(err)
	}
	obj := bytes.TrimSpace(c.Raw)
	if len(obj) < 2 || obj[0] != '{' || obj[len(obj)-1] != '}' {
		t.Fatalf("accepted %q, which is not a JSON object", c.Raw)
	}
	body := bytes.TrimSpace(obj[1 : len(obj)-1])
	out := append([]byte{'{'}, body...)
	if len(body) > 0 {
		out = append(out, ',')
	}
	return append(out, keys[1:]...)
}

// checkInvariants asserts what every accepted configuration guarantees to
// the code that uses it.
func checkInvariants(t *testing.T, c *NetConf) {
	t.Helper()
	for field, v := range map[string]string{"confDir": c.ConfDir, "cniDir": c.CNIDir, "binDir": c.BinDir, "multusNamespace": c.MultusNamespace} {
		if v == "" {
			t.Errorf("accepted %q with an empty %s", c.Raw, field)
		}
	}
	if c.GlobalNamespaces == nil || c.SystemNamespaces == nil {
		t.Errorf("accepted %q without the default namespaces: global %v, system %v", c.Raw, c.GlobalNamespaces, c.SystemNamespaces)
	}
	if c.ClusterNetwork == "" && len(c.Delegates) == 0 {
		t.Errorf("accepted %q with neither clusterNetwork nor delegates", c.Raw)
	}
	if c.AttachConcurrency < 1 {
		t.Errorf("accepted %q with attachConcurrency %d", c.Raw, c.AttachConcurrency)
	}
	if d := time.Duration(c.ReadinessTimeoutSeconds) * time.Second; c.ReadinessTimeoutSeconds < 1 || d/time.Second != time.Duration(c.ReadinessTimeoutSeconds) {
		t.Errorf("accepted %q with readinessTimeoutSeconds %d (%v as a wait)", c.Raw, c.ReadinessTimeoutSeconds, d)
	}
	switch strings.ToLower(c.LogLevel) {
	case "", "debug", "verbose", "info", "error", "panic":
	default:
		t.Errorf("accepted %q with logLevel %q", c.Raw, c.LogLevel)
	}
	if t.Failed() {
		t.FailNow()
	}
}
