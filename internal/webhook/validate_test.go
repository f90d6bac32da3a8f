package webhook

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// fakeNADs maps the "ns/name" of each NAD that exists to its resourceName
// annotation ("" for none); every lookup in namespace "down" fails.
type fakeNADs map[string]string

func (f fakeNADs) NADExists(ctx context.Context, ns, name string) (bool, error) {
	_, found, err := f.NADResourceName(ctx, ns, name)
	return found, err
}

func (f fakeNADs) NADResourceName(_ context.Context, ns, name string) (string, bool, error) {
	if ns == "down" {
		return "", false, errors.New("connection refused")
	}
	r, ok := f[ns+"/"+name]
	return r, ok, nil
}

func nadJSON(config string) []byte {
	return []byte(`{"apiVersion":"k8s.cni.cncf.io/v1","kind":"NetworkAttachmentDefinition","metadata":{"name":"n","namespace":"tomcat"},"spec":{"config":` + config + `}}`)
}

func podJSON(annotations string) []byte {
	return []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"tomcat","annotations":{` + annotations + `}},"spec":{}}`)
}

func TestNAD(t *testing.T) {
	v := &Validator{NADs: fakeNADs{}}
	tests := []struct {
		name, config, want string
	}{
		{"valid", `"{\"cniVersion\":\"0.3.1\",\"type\":\"macvlan\",\"ipam\":{\"type\":\"static\"}}"`, ""},
		{"empty config (from the node's conf dir)", `""`, ""},
		{"bad JSON", `"{\"type\":"`, "spec.config: invalid JSON"},
		{"missing type", `"{\"cniVersion\":\"0.3.1\"}"`, "spec.config.type: is required"},
		{"unparseable IPAM", `"{\"type\":\"macvlan\",\"ipam\":{\"type\":\"host-local\",\"subnet\":\"10.0.0.0/33\"}}"`, `spec.config.ipam.subnet: invalid value "10.0.0.0/33"`},
		{"config not a string", `{"type":"macvlan"}`, "spec.config: must be a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := v.NAD(nadJSON(tt.config), "tomcat")
			check(t, got.Problems, tt.want)
		})
	}
}

func check(t *testing.T, problems []string, want string) {
	t.Helper()
	if want == "" {
		if len(problems) > 0 {
			t.Errorf("problems = %q, want none", problems)
		}
		return
	}
	if len(problems) != 1 || !strings.HasPrefix(problems[0], want) {
		t.Errorf("problems = %q, want one starting with %q", problems, want)
	}
}

func TestPod(t *testing.T) {
	nads := fakeNADs{"tomcat/macvlan-conf": "", "default/shared": "", "other/remote": "", "kube-system/standalone": ""}
	const nets = `"k8s.v1.cni.cncf.io/networks":`
	tests := []struct {
		name, ann string
		policy    Policy
		want      string
		warn      bool
	}{
		{"no annotation", `"a":"b"`, Policy{}, "", false},
		{"existing NAD twice", nets + `"macvlan-conf,macvlan-conf"`, Policy{}, "", false},
		{"malformed", nets + `"macvlan-conf,"`, Policy{}, "metadata.annotations[k8s.v1.cni.cncf.io/networks]: networks[1]", false},
		{"missing NAD", nets + `"macvlan-conf,nope"`, Policy{},
			"metadata.annotations[k8s.v1.cni.cncf.io/networks]: networks[1]: NetworkAttachmentDefinition tomcat/nope not found", false},
		{"other namespace without isolation", nets + `"other/remote"`, Policy{}, "", false},
		{"isolation forbids", nets + `"other/remote"`, Policy{NamespaceIsolation: true, GlobalNamespaces: []string{"default"}},
			"metadata.annotations[k8s.v1.cni.cncf.io/networks]: networks[0]: network other/remote is in another namespace", false},
		{"isolation allows global", nets + `"default/shared"`, Policy{NamespaceIsolation: true, GlobalNamespaces: []string{"default"}}, "", false},
		{"default network missing", `"v1.multus-cni.io/default-network":"gone"`, Policy{},
			"metadata.annotations[v1.multus-cni.io/default-network]: NetworkAttachmentDefinition kube-system/gone not found", false},
		{"default network present", `"v1.multus-cni.io/default-network":"standalone"`, Policy{}, "", false},
		{"API down admits with a warning", nets + `"down/x"`, Policy{}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &Validator{NADs: nads, Policy: tt.policy}
			got := v.Pod(t.Context(), podJSON(tt.ann), "tomcat")
			check(t, got.Problems, tt.want)
			if (len(got.Warnings) > 0) != tt.warn {
				t.Errorf("warnings = %q, want some: %v", got.Warnings, tt.warn)
			}
		})
	}
}

func TestNetworkDefinition(t *testing.T) {
	v := &Validator{}
	bad := v.NetworkDefinition([]byte(`{"spec":{"type":"SimpleMacvlan","name":"m","simpleMacvlanConfig":{"mode":"loud"}}}`))
	check(t, bad.Problems, "spec: invalid Additional Network Configuration: [invalid Macvlan mode: loud]")
	legacy := v.NetworkDefinition([]byte(`{"spec":{"type":"simplemacvlan","name":"m"}}`))
	check(t, legacy.Problems, "")
	if len(legacy.Warnings) != 1 || !strings.Contains(legacy.Warnings[0], "deprecated") {
		t.Errorf("warnings = %q, want the deprecated spelling", legacy.Warnings)
	}
}

// A plexus-ipam configuration that names no store is admitted where
// plexusd writes its defaults (the default) and refused where it does
// not; one naming its store is admitted either way. The same holds for a
// NetworkDefinition rendering such a NAD.
func TestIPAMWithoutStore(t *testing.T) {
	bare := `"{\"cniVersion\":\"0.3.1\",\"type\":\"macvlan\",\"ipam\":{\"type\":\"plexus-ipam\",\"range\":\"198.51.100.0/24\"}}"`
	named := `"{\"cniVersion\":\"0.3.1\",\"type\":\"macvlan\",\"ipam\":{\"type\":\"plexus-ipam\",\"range\":\"198.51.100.0/24\",\"etcd_host\":\"127.0.0.1:2379\"}}"`
	def := []byte(`{"apiVersion":"plexus.dev/v1alpha1","kind":"NetworkDefinition","metadata":{"name":"d"},"spec":{"type":"SimpleMacvlan","name":"pool-net","namespace":"tomcat",
		"simpleMacvlanConfig":{"master":"ens3","ipamConfig":{"type":"PlexusIPAM","plexusIPAMConfig":{"range":"198.51.100.0/24"}}}}}`)
	withDefaults := &Validator{NADs: fakeNADs{}}
	without := &Validator{NADs: fakeNADs{}, Policy: Policy{NoIPAMDefaults: true}}
	for _, tc := range []struct {
		name string
		got  Verdict
		want string
	}{
		{"bare, plexusd defaults", withDefaults.NAD(nadJSON(bare), "tomcat"), ""},
		{"named, plexusd defaults", withDefaults.NAD(nadJSON(named), "tomcat"), ""},
		{"named, no defaults", without.NAD(nadJSON(named), "tomcat"), ""},
		{"bare, no defaults", without.NAD(nadJSON(bare), "tomcat"), "spec.config.ipam: names no store"},
		{"definition, plexusd defaults", withDefaults.NetworkDefinition(def), ""},
		{"definition, no defaults", without.NetworkDefinition(def), "spec: the rendered NAD tomcat/pool-net: spec.config.ipam: names no store"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(t, tc.got.Problems, tc.want)
			if len(tc.got.Warnings) > 0 {
				t.Errorf("warnings %q, want none", tc.got.Warnings)
			}
		})
	}
}
