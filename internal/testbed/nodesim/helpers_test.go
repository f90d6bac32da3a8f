package nodesim

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// requireRoot skips the test unless it runs as root with the tools the
// simulator shells out to.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	for _, tool := range []string{"ip", "nsenter", "ping"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s in PATH (make deps)", tool)
		}
	}
}

// requirePlugins skips the test unless the reference CNI plugins are built
// into <repo>/.testbed/bin/cni, and returns that directory.
func requirePlugins(t *testing.T, plugins ...string) string {
	t.Helper()
	requireRoot(t)
	root, err := repoRoot()
	if err != nil {
		t.Skipf("cannot locate the repository: %v", err)
	}
	dir := filepath.Join(root, ".testbed", "bin", "cni")
	for _, p := range plugins {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Skipf("reference plugin %s not built (make testbed): %v", p, err)
		}
	}
	return dir
}

// repoRoot walks up from the working directory to the directory holding
// go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found")
		}
		dir = parent
	}
}

// namespaces records the namespaces a scenario created so the parent test
// can verify they are gone once the scenario's cleanups have run.
type namespaces []string

func (n *namespaces) add(names ...string) { *n = append(*n, names...) }

// assertGone fails t for every recorded namespace that still exists.
func (n namespaces) assertGone(t *testing.T) {
	t.Helper()
	if len(n) == 0 {
		t.Error("scenario recorded no namespaces")
	}
	for _, name := range n {
		if netnsExists(name) {
			t.Errorf("namespace %s left behind", name)
		}
	}
}

// fileExists reports whether path exists.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
