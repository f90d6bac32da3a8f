package main

import (
	"io"
	"strings"
	"testing"

	"github.com/plexus-cni/plexus/internal/logging"
)

// TestLogLevels: the controller accepts every level name of
// internal/logging (run gets past the level to the kubeconfig) and
// refuses others.
func TestLogLevels(t *testing.T) {
	for _, name := range logging.LevelNames() {
		o, err := parseFlags([]string{"--log-level=" + name, "--kubeconfig=/nonexistent/kubeconfig"}, io.Discard, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if err := run(t.Context(), o); err == nil || !strings.HasPrefix(err.Error(), "--kubeconfig ") {
			t.Errorf("--log-level=%s: %v, want it accepted (and the kubeconfig refused)", name, err)
		}
	}
	o, _ := parseFlags([]string{"--log-level=loud"}, io.Discard, io.Discard)
	if err := run(t.Context(), o); err == nil || !strings.HasPrefix(err.Error(), `--log-level: unknown log level "loud"`) {
		t.Errorf("--log-level=loud: %v", err)
	}
}
