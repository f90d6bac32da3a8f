package v1alpha1_test

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// root is the repository, seen from this package.
const root = "../../../.."

// generated tells whether a file (slash path from the repository root) is
// one hack/generate.sh writes: a file there that it no longer writes is
// stale too.
func generated(path string) bool {
	switch {
	case strings.HasPrefix(path, "pkg/client/"):
		return true
	case strings.HasPrefix(path, "pkg/apis/") && strings.HasPrefix(filepath.Base(path), "zz_generated."):
		return true
	case strings.HasPrefix(path, "deploy/crds/") && !strings.Contains(path[len("deploy/crds/"):], "/"):
		return strings.HasSuffix(path, ".plexus.dev.yaml")
	}
	return false
}

// files lists the regular files under dir/sub that keep(path) accepts,
// by slash path relative to dir.
func files(t *testing.T, dir string, subs []string, keep func(string) bool) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, sub := range subs {
		err := filepath.WalkDir(filepath.Join(dir, sub), func(p string, d fs.DirEntry, err error) error {
			if os.IsNotExist(err) {
				return nil
			}
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			if rel = filepath.ToSlash(rel); keep(rel) {
				out[rel] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// The generated code and CRDs are what hack/generate.sh makes of the types
// now: it runs the generators into a temporary directory and compares. The
// first run builds the generators (hack/codegen) into bin/tools, which
// takes a while; later runs reuse them.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the code generators; not in -short mode")
	}
	out := t.TempDir()
	cmd := exec.Command("bash", filepath.Join(root, "hack", "generate.sh"), out)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("hack/generate.sh: %v\n%s", err, stderr.String())
	}
	subs := []string{"pkg/apis", "pkg/client", "deploy/crds"}
	fresh := files(t, out, subs, func(string) bool { return true })
	if len(fresh) == 0 {
		t.Fatal("hack/generate.sh wrote nothing")
	}
	have := files(t, root, subs, generated)
	for p := range fresh {
		if !generated(p) {
			t.Errorf("hack/generate.sh wrote %s, which this test does not count as generated: update generated()", p)
			continue
		}
		want, err := os.ReadFile(filepath.Join(out, p))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(root, p))
		switch {
		case os.IsNotExist(err):
			t.Errorf("%s is missing: run make generate", p)
		case err != nil:
			t.Fatal(err)
		case !bytes.Equal(got, want):
			t.Errorf("%s is stale: run make generate", p)
		}
	}
	for p := range have {
		if !fresh[p] {
			t.Errorf("%s is no longer generated: run make generate (it removes it)", p)
		}
	}
}
