package nodesim

import (
	"os"
	"testing"

	"github.com/plexus-cni/plexus/internal/testbed"
)

// requireRoot skips the test (fails it under PLEXUS_REQUIRE_TESTBED=1)
// unless it runs as root with the tools the simulator shells out to.
func requireRoot(t *testing.T) {
	t.Helper()
	testbed.RequireRoot(t)
	testbed.RequireTools(t, "ip", "nsenter", "ping")
}

// requirePlugins skips the test (fails it under PLEXUS_REQUIRE_TESTBED=1)
// unless the reference CNI plugins are built in the test bed's CNI bin dir
// (PLEXUS_TESTBED_DIR and PLEXUS_TESTBED_BIN apply), and returns that dir.
func requirePlugins(t *testing.T, plugins ...string) string {
	t.Helper()
	requireRoot(t)
	return testbed.RequireCNIPlugins(t, plugins...)
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
