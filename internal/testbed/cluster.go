package testbed

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ClusterDirEnv names the variable that overrides the cluster tier's directory.
const ClusterDirEnv = "PLEXUS_CLUSTER_DIR"

// ClusterDir returns the real-cluster tier's directory: $PLEXUS_CLUSTER_DIR
// or <root>/.cluster (hack/cluster.sh).
func ClusterDir() string {
	if d := os.Getenv(ClusterDirEnv); d != "" {
		return d
	}
	return filepath.Join(Root(), ".cluster")
}

// RequireCluster connects to the real two-node cluster that
// `make cluster-up` starts, or skips the test (fails it when
// PLEXUS_REQUIRE_TESTBED=1) when it is not up.
func RequireCluster(t testing.TB) *Env {
	t.Helper()
	env, err := connect(t.Context(), filepath.Join(ClusterDir(), "kubeconfig"))
	if err != nil {
		unavailable(t, "real cluster not usable (%v); run `make cluster-up`", err)
		return nil
	}
	return env
}

// Kubectl runs the test bed's kubectl against e's cluster with a bounded
// time and returns its standard output; a failure fails t with stderr.
func (e *Env) Kubectl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := e.TryKubectl(t.Context(), args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// TryKubectl is Kubectl returning the error (with stderr) instead.
func (e *Env) TryKubectl(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(BinDir(), "kubectl"),
		append([]string{"--kubeconfig=" + e.Kubeconfig}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.String(), nil
}

// Exec runs a command in a pod's first container (kubectl exec) and returns
// its output.
func (e *Env) Exec(ctx context.Context, ns, pod string, command ...string) (string, error) {
	return e.TryKubectl(ctx, append([]string{"exec", "-n", ns, pod, "--"}, command...)...)
}
