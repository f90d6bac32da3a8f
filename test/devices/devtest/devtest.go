// Package devtest builds the test devices for tests: the testnic-dp device
// plugin and the testnic-cni plugin (see their package documentation, and
// package testnic for the names they share).
package devtest

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/plexus-cni/plexus/internal/testbed"
)

const (
	// DPName and CNIName are the binaries' file names; CNIName is also the
	// plugin "type" in a network configuration.
	DPName  = "testnic-dp"
	CNIName = "testnic-cni"
	// DRAName is the test DRA driver (Build puts it beside the others).
	DRAName = "testnic-dra"

	pkgDir = "github.com/plexus-cni/plexus/test/devices/"
)

// Build compiles testnic-dp, testnic-cni and testnic-dra into outDir, failing t when it
// cannot, and returns their paths.
func Build(t testing.TB, outDir string) (dp, cni string) {
	t.Helper()
	root := testbed.Root()
	if root == "" {
		t.Fatal("build test devices: not inside the plexus repository")
	}
	cmd := exec.Command("go", "build", "-o", outDir+string(filepath.Separator), pkgDir+DPName, pkgDir+CNIName, pkgDir+DRAName)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build test devices: %v\n%s", err, out)
	}
	return filepath.Join(outDir, DPName), filepath.Join(outDir, CNIName)
}
