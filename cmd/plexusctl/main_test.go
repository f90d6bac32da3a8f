package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMain keeps the tests from reading the developer's kubeconfig: the
// namespace of lint and of the cluster verbs defaults to its context's.
func TestMain(m *testing.M) {
	os.Setenv("KUBECONFIG", filepath.Join(os.TempDir(), "plexusctl-test-no-such-kubeconfig"))
	os.Exit(m.Run())
}
