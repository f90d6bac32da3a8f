package nad

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestFindInDir(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"05-single.conf":     `{"cniVersion":"0.3.1","name":"net-a","type":"macvlan"}`,
		"10-list.conflist":   `{"cniVersion":"0.4.0","name":"net-a","plugins":[{"type":"bridge"},{"type":"tuning"}]}`,
		"20-other.conflist":  `{"cniVersion":"0.4.0","name":"net-b","plugins":[{"type":"ptp"}]}`,
		"30-single.json":     `{"cniVersion":"0.3.1","name":"net-c","type":"ipvlan"}`,
		"01-garbage.conf":    `{not json`,
		"40-broken.conflist": `{"name":"net-d","plugins":[{"type":""}]}`,
		"README.md":          `{"name":"net-e","type":"x"}`,
	})
	tests := []struct {
		name, want, wantErr string
		wantTypes           []string
	}{
		{name: "net-a", want: "10-list.conflist", wantTypes: []string{"bridge", "tuning"}},
		{name: "net-b", want: "20-other.conflist", wantTypes: []string{"ptp"}},
		{name: "net-c", want: "30-single.json", wantTypes: []string{"ipvlan"}},
		{name: "net-d", wantErr: filepath.Join(dir, "40-broken.conflist") + ": plugins[0].type: is required"},
		{name: "net-e", wantErr: `network "net-e" in ` + dir + ": not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := FindInDir(dir, tt.name)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("FindInDir(%q) error = %v, want %q", tt.name, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("FindInDir(%q): %v", tt.name, err)
			}
			if d.Source != filepath.Join(dir, tt.want) || d.Name != tt.name || strings.Join(d.Types, ",") != strings.Join(tt.wantTypes, ",") {
				t.Errorf("FindInDir(%q) = source %s name %s types %v; want %s %v", tt.name, d.Source, d.Name, d.Types, tt.want, tt.wantTypes)
			}
		})
	}
}

func TestFindInDirNotFound(t *testing.T) {
	_, err := FindInDir(filepath.Join(t.TempDir(), "missing"), "x")
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("missing dir: err = %v, want ErrNotFound", err)
	}
	_, err = FindInDir(writeFiles(t, nil), "x")
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("empty dir: err = %v, want ErrNotFound", err)
	}
}

func TestFirstInDir(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"00-plexus.conf":      `{"cniVersion":"1.0.0","name":"plexus","type":"plexus"}`,
		"01-plexus.conflist":  `{"cniVersion":"1.0.0","name":"plexus-network","plugins":[{"type":"plexus-shim"}]}`,
		"10-flannel.conflist": `{"cniVersion":"0.3.1","name":"cbr0","plugins":[{"type":"flannel"},{"type":"portmap","capabilities":{"portMappings":true}}]}`,
		"20-other.conf":       `{"cniVersion":"0.3.1","name":"other","type":"bridge"}`,
	})
	d, err := FirstInDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "cbr0" || d.Source != filepath.Join(dir, "10-flannel.conflist") || !d.Capabilities["portMappings"] {
		t.Errorf("FirstInDir = %+v", d)
	}
	if _, err := FirstInDir(writeFiles(t, map[string]string{"a.txt": "{}"})); !errors.Is(err, ErrNotFound) {
		t.Errorf("no config: err = %v, want ErrNotFound", err)
	}
	bad := writeFiles(t, map[string]string{"10.conf": `{"name":"x"}`})
	if _, err := FirstInDir(bad); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("invalid first file: err = %v, want a parse error", err)
	}
}

func TestFromNAD(t *testing.T) {
	dir := writeFiles(t, map[string]string{"10.conf": `{"cniVersion":"0.3.1","name":"on-disk","type":"macvlan"}`})
	withSpec := &NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: "tomcat", Name: "macvlan-conf"}, Spec: Spec{Config: s4Config}}
	d, err := FromNAD(withSpec, dir)
	if err != nil {
		t.Fatal(err)
	}
	if d.Source != "tomcat/macvlan-conf" || d.Name != "whereaboutsexample" {
		t.Errorf("FromNAD(spec) = source %q name %q", d.Source, d.Name)
	}
	empty := &NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "on-disk"}, Spec: Spec{Config: "  "}}
	d, err = FromNAD(empty, dir)
	if err != nil {
		t.Fatal(err)
	}
	if d.Source != filepath.Join(dir, "10.conf") || d.Name != "on-disk" {
		t.Errorf("FromNAD(empty) = source %q name %q", d.Source, d.Name)
	}
	empty.Name = "absent"
	if _, err := FromNAD(empty, dir); !errors.Is(err, ErrNotFound) {
		t.Errorf("FromNAD(absent) err = %v, want ErrNotFound", err)
	}
}

func TestParseFileErrors(t *testing.T) {
	dir := writeFiles(t, map[string]string{"x.conf": "{\n\"name\": \"x\", \"type\": \"a\",\n\"ipam\": {\"type\": \"static\", \"addresses\": [{\"address\": \"10.0.0.1\"}]}}", "noname.conf": `{"type":"a"}`})
	_, err := ParseFile(filepath.Join(dir, "x.conf"))
	want := filepath.Join(dir, "x.conf") + `: ipam.addresses[0].address: invalid value "10.0.0.1": not a CIDR (like 192.0.2.0/24)`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
	_, err = ParseFile(filepath.Join(dir, "noname.conf"))
	if want := filepath.Join(dir, "noname.conf") + ": name: is required"; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
	if _, err := ParseFile(filepath.Join(dir, "missing.conf")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v, want ErrNotExist", err)
	}
}

func TestDecodeNAD(t *testing.T) {
	tests := []struct{ name, obj, wantErr string }{
		{"yaml", "apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata:\n  name: macvlan-conf\nspec:\n  config: '" + s1Config + "'\n", ""},
		{"json without type meta", `{"metadata":{"name":"a","namespace":"b"},"spec":{}}`, ""},
		{"wrong kind", "kind: Pod\nmetadata: {name: a}\n", `kind: invalid value "Pod": want NetworkAttachmentDefinition`},
		{"wrong version", "apiVersion: k8s.cni.cncf.io/v2\nmetadata: {name: a}\n", `apiVersion: invalid value "k8s.cni.cncf.io/v2": want k8s.cni.cncf.io/v1`},
		{"no name", "metadata: {namespace: a}\n", `metadata.name: is required`},
		{"config as object", "metadata: {name: a}\nspec:\n  config:\n    type: macvlan\n", `spec.config: must be a string holding the CNI configuration JSON, not a object`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := DecodeNAD([]byte(tt.obj))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("DecodeNAD err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n.Name == "" {
				t.Errorf("name not decoded: %+v", n)
			}
		})
	}
}

func TestFromNADKeepsTheResourceName(t *testing.T) {
	n := &NetworkAttachmentDefinition{Spec: Spec{Config: `{"cniVersion":"1.0.0","type":"sriov"}`}}
	n.Namespace, n.Name = "ns", "vf"
	n.Annotations = map[string]string{ResourceNameAnnotation: " intel.com/sriov_netdevice "}
	d, err := FromNAD(n, t.TempDir())
	if err != nil || d.ResourceName != "intel.com/sriov_netdevice" {
		t.Fatalf("FromNAD = %+v, %v; want the annotation, trimmed", d, err)
	}
	n.Annotations = nil
	if d, err := FromNAD(n, t.TempDir()); err != nil || d.ResourceName != "" {
		t.Fatalf("without the annotation: %+v, %v", d, err)
	}
}
