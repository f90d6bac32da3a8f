package testbed

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFindRootSkipsOtherModules(t *testing.T) {
	tmp := t.TempDir()
	writeFile(t, filepath.Join(tmp, "go.mod"), "// root\nmodule github.com/plexus-cni/plexus\n\ngo 1.26\n")
	writeFile(t, filepath.Join(tmp, "hack", "tools", "go.mod"), "module github.com/plexus-cni/plexus/hack/tools\n")
	start := filepath.Join(tmp, "hack", "tools", "cmd", "etcd")
	if err := os.MkdirAll(start, 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := findRoot(start)
	if err != nil {
		t.Fatalf("findRoot(%q): %v", start, err)
	}
	if got != tmp {
		t.Errorf("findRoot(%q) = %q, want %q", start, got, tmp)
	}
}

func TestFindRootFailsOutsideRepo(t *testing.T) {
	tmp := t.TempDir()
	writeFile(t, filepath.Join(tmp, "go.mod"), "module example.com/other\n")
	if got, err := findRoot(tmp); err == nil {
		t.Errorf("findRoot(%q) = %q, want an error", tmp, got)
	}
}

func TestRootIsThisRepository(t *testing.T) {
	root := Root()
	if root == "" {
		t.Fatal("Root() = \"\" inside the repository")
	}
	if _, err := os.Stat(filepath.Join(root, "internal", "testbed", "testbed.go")); err != nil {
		t.Errorf("Root() = %q does not contain internal/testbed: %v", root, err)
	}
}

func TestDirs(t *testing.T) {
	t.Setenv(BinEnv, "")
	t.Setenv(DirEnv, "/x/tb")
	got := []string{Dir(), BinDir(), CNIBinDir()}
	want := []string{"/x/tb", "/x/tb/bin", "/x/tb/bin/cni"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Dir, BinDir, CNIBinDir (-want +got):\n%s", diff)
	}
	t.Setenv(BinEnv, "/shared/bin")
	got = []string{Dir(), BinDir(), CNIBinDir()}
	want = []string{"/x/tb", "/shared/bin", "/shared/bin/cni"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("with %s: Dir, BinDir, CNIBinDir (-want +got):\n%s", BinEnv, diff)
	}
	t.Setenv(DirEnv, "")
	if want := filepath.Join(Root(), ".testbed"); Dir() != want {
		t.Errorf("Dir() without %s = %q, want %q", DirEnv, Dir(), want)
	}
}

func TestSanitizePrefix(t *testing.T) {
	label := regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	tests := map[string]string{
		"nad":                    "nad",
		"TestCreateNAD/sub_test": "testcreatenad-sub-test",
		"--x--":                  "x",
		"":                       "test",
		"___":                    "test",
		"a-very-long-prefix-that-goes-beyond-forty-characters": "a-very-long-prefix-that-goes-beyond-fort",
	}
	for in, want := range tests {
		got := sanitizePrefix(in)
		if got != want {
			t.Errorf("sanitizePrefix(%q) = %q, want %q", in, got, want)
		}
		if !label.MatchString(got) || len(got) > maxPrefixLen {
			t.Errorf("sanitizePrefix(%q) = %q is not a short DNS-1123 label", in, got)
		}
	}
}

// recordingTB records Skipf and Fatalf instead of ending the test.
type recordingTB struct {
	testing.TB
	skipped, failed string
}

func (r *recordingTB) Helper() {}
func (r *recordingTB) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
}
func (r *recordingTB) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
}

func TestRequireWithoutTestbed(t *testing.T) {
	t.Setenv(DirEnv, t.TempDir())
	for _, tc := range []struct {
		require              string
		wantSkip, wantFailed bool
	}{
		{require: "", wantSkip: true},
		{require: "1", wantFailed: true},
	} {
		t.Setenv(RequireEnv, tc.require)
		rec := &recordingTB{TB: t}
		if env := Require(rec); env != nil {
			t.Errorf("%s=%q: Require returned an Env without a test bed", RequireEnv, tc.require)
		}
		if (rec.skipped != "") != tc.wantSkip || (rec.failed != "") != tc.wantFailed {
			t.Errorf("%s=%q: skipped %q, failed %q; want skip %v, fail %v",
				RequireEnv, tc.require, rec.skipped, rec.failed, tc.wantSkip, tc.wantFailed)
		}
		if msg := rec.skipped + rec.failed; !regexp.MustCompile(`make testbed-up`).MatchString(msg) {
			t.Errorf("message %q does not say to run make testbed-up", msg)
		}
	}
}

func TestDecodeYAML(t *testing.T) {
	docs := `
# leading comment
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: macvlan-a
spec:
  config: '{"cniVersion":"1.0.0","type":"macvlan"}'
---
---
apiVersion: v1
kind: Pod
metadata:
  name: p1
  namespace: other
spec:
  nodeName: node-a
  containers: [{name: c, image: pause}]
`
	objs, err := decodeYAML(docs)
	if err != nil {
		t.Fatalf("decodeYAML: %v", err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, fmt.Sprintf("%s %s/%s", o.GetKind(), o.GetNamespace(), o.GetName()))
	}
	want := []string{"NetworkAttachmentDefinition /macvlan-a", "Pod other/p1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decoded objects (-want +got):\n%s", diff)
	}
	if cfg := objs[0].Object["spec"].(map[string]any)["config"]; cfg != `{"cniVersion":"1.0.0","type":"macvlan"}` {
		t.Errorf("spec.config = %q", cfg)
	}
}

func TestDecodeYAMLErrors(t *testing.T) {
	for name, docs := range map[string]string{
		"no name":    "apiVersion: v1\nkind: Pod\nmetadata: {}\n",
		"no kind":    "apiVersion: v1\nmetadata: {name: x}\n",
		"bad yaml":   "apiVersion: v1\nkind: [Pod\n",
		"not object": "- a\n- b\n",
	} {
		if objs, err := decodeYAML(docs); err == nil {
			t.Errorf("%s: decodeYAML = %d objects, want an error", name, len(objs))
		}
	}
}

func TestNewNAD(t *testing.T) {
	withSpec := NewNAD("ns1", "net-a", `{"type":"bridge"}`)
	if got, _, _ := unstructured.NestedString(withSpec.Object, "spec", "config"); got != `{"type":"bridge"}` {
		t.Errorf("spec.config = %q", got)
	}
	if withSpec.GetNamespace() != "ns1" || withSpec.GetName() != "net-a" || withSpec.GetAPIVersion() != "k8s.cni.cncf.io/v1" {
		t.Errorf("metadata = %s/%s %s", withSpec.GetNamespace(), withSpec.GetName(), withSpec.GetAPIVersion())
	}
	if _, ok := NewNAD("ns1", "net-b", "").Object["spec"]; ok {
		t.Error("NewNAD with empty config has a spec")
	}
}
