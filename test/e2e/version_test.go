package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plexus-cni/plexus/internal/testbed"
)

// binaries are what `make build` puts in bin/ (the Makefile's BINARIES,
// and the kubectl plugin).
var binaries = []string{"plexus", "plexus-shim", "plexus-ipam", "plexus-ipam-local", "plexusd",
	"plexus-controller", "plexusctl", "kubectl-plexus"}

// Every binary `make build` made answers --version with its name and one
// version, the one the Makefile stamped (git describe), not "dev".
func TestEveryBinaryReportsTheVersion(t *testing.T) {
	var version, from string
	for _, name := range binaries {
		bin := filepath.Join(testbed.Root(), "bin", name)
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("%s is missing: run `make build` first", bin)
		}
		cmd := exec.Command(bin, "--version")
		cmd.Env = []string{"PATH=/usr/bin:/bin"} // no CNI_COMMAND: the plugins say who they are
		out, err := cmd.CombinedOutput()         // the CNI plugins print it on stderr, as skel does
		if err != nil {
			t.Errorf("%s --version: %v\n%s", name, err, out)
			continue
		}
		first, _, _ := strings.Cut(string(out), "\n")
		who := name
		if name == "kubectl-plexus" {
			who = "kubectl plexus"
		}
		v, ok := strings.CutPrefix(first, who+" ")
		switch {
		case !ok || v == "" || strings.Contains(v, " "):
			t.Errorf("%s --version printed %q, want %q and the version", name, first, who)
		case v == "dev":
			t.Errorf("%s reports version dev: not built by `make build`", name)
		case version == "":
			version, from = v, name
		case v != version:
			t.Errorf("%s reports %s, %s reports %s: one build, one version", name, v, from, version)
		}
	}
}
