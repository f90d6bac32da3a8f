// Package testbed connects integration tests to the plexus test bed: a real
// etcd and kube-apiserver on 127.0.0.1 started by `make testbed-up`
// (hack/testbed.sh), the reference CNI plugins and cnitool it builds.
//
// Tests call Require for clients. When the test bed is not up they are
// skipped, or fail when PLEXUS_REQUIRE_TESTBED=1 (CI sets it so a missing
// test bed cannot pass silently).
package testbed

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

const (
	// RequireEnv names the variable that turns skips into failures when set to "1".
	RequireEnv = "PLEXUS_REQUIRE_TESTBED"
	// DirEnv names the variable that overrides the test bed directory.
	DirEnv = "PLEXUS_TESTBED_DIR"
	// BinEnv names the variable that overrides the binaries' directory.
	BinEnv = "PLEXUS_TESTBED_BIN"

	modulePath   = "github.com/plexus-cni/plexus"
	readyTimeout = 20 * time.Second
)

// Env is a connection to a running test bed.
type Env struct {
	// Kubeconfig is the path of the admin kubeconfig.
	Kubeconfig string
	// RESTConfig is the admin client configuration.
	RESTConfig *rest.Config
	// Client is a typed client for core Kubernetes APIs.
	Client kubernetes.Interface
	// Dynamic is a client for any resource, including CRDs.
	Dynamic dynamic.Interface
}

// Root returns the repository root: the nearest directory at or above the
// working directory whose go.mod declares module github.com/plexus-cni/plexus.
// It returns "" when there is none.
func Root() string {
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	root, err := findRoot(wd)
	if err != nil {
		return ""
	}
	return root
}

// Dir returns the test bed directory: $PLEXUS_TESTBED_DIR or <root>/.testbed.
func Dir() string {
	if d := os.Getenv(DirEnv); d != "" {
		return d
	}
	return filepath.Join(Root(), ".testbed")
}

// BinDir returns the directory holding kube-apiserver, kubectl, etcd and
// cnitool: $PLEXUS_TESTBED_BIN or <Dir()>/bin, as hack/testbed.sh has it.
func BinDir() string {
	if d := os.Getenv(BinEnv); d != "" {
		return d
	}
	return filepath.Join(Dir(), "bin")
}

// CNIBinDir returns the directory holding the reference CNI plugins.
func CNIBinDir() string { return filepath.Join(BinDir(), "cni") }

func findRoot(start string) (string, error) {
	for dir := start; ; {
		if declaresModule(filepath.Join(dir, "go.mod"), modulePath) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of module %s at or above %q", modulePath, start)
		}
		dir = parent
	}
}

// declaresModule reports whether the go.mod at path declares module want.
func declaresModule(path, want string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "module" {
			return strings.Trim(fields[1], "\"`") == want
		}
	}
	return false
}

// Require connects to the test bed, or skips the test (fails it when
// PLEXUS_REQUIRE_TESTBED=1) when the test bed is not up.
func Require(t testing.TB) *Env {
	t.Helper()
	env, err := connect(t.Context(), filepath.Join(Dir(), "kubeconfig"))
	if err != nil {
		unavailable(t, "test bed not usable (%v); run `make testbed-up`", err)
		return nil
	}
	return env
}

// RequireRoot skips the test (fails it when PLEXUS_REQUIRE_TESTBED=1) unless
// it runs as root and `ip netns` works.
func RequireRoot(t testing.TB) {
	t.Helper()
	if euid := os.Geteuid(); euid != 0 {
		unavailable(t, "needs root, running as euid %d", euid)
		return
	}
	if out, err := exec.Command("ip", "netns", "list").CombinedOutput(); err != nil {
		unavailable(t, "`ip netns list` failed: %v: %s", err, bytes.TrimSpace(out))
	}
}

// RequireTools skips the test (fails it when PLEXUS_REQUIRE_TESTBED=1) unless
// every named program is on PATH.
func RequireTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(t, "needs %s on PATH (make deps): %v", tool, err)
			return
		}
	}
}

// RequireCNIPlugins skips the test (fails it when PLEXUS_REQUIRE_TESTBED=1)
// unless it runs as root and the named reference plugins are built in
// CNIBinDir(), which it returns.
func RequireCNIPlugins(t testing.TB, plugins ...string) string {
	t.Helper()
	RequireRoot(t)
	dir := CNIBinDir()
	for _, p := range plugins {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			unavailable(t, "reference CNI plugin %s not built (make testbed): %v", p, err)
			return dir
		}
	}
	return dir
}

func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf(format, args...)
		return
	}
	t.Skipf(format, args...)
}

func connect(ctx context.Context, kubeconfig string) (*Env, error) {
	if _, err := os.Stat(kubeconfig); err != nil {
		return nil, fmt.Errorf("kubeconfig %q: %w", kubeconfig, err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig %q: %w", kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	cfg.WarningHandler = rest.NoWarnings{}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("typed client for %q: %w", cfg.Host, err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client for %q: %w", cfg.Host, err)
	}
	if err := waitReady(ctx, client.Discovery().RESTClient()); err != nil {
		return nil, fmt.Errorf("kube-apiserver %s: %w", cfg.Host, err)
	}
	return &Env{Kubeconfig: kubeconfig, RESTConfig: cfg, Client: client, Dynamic: dyn}, nil
}

// waitReady polls /readyz for a bounded time, so that a test starting while
// another one restarts the API server waits instead of skipping.
func waitReady(ctx context.Context, rc rest.Interface) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, readyTimeout, true,
		func(ctx context.Context) (bool, error) {
			body, err := rc.Get().AbsPath("/readyz").Timeout(2 * time.Second).DoRaw(ctx)
			if err == nil && string(body) != "ok" {
				err = fmt.Errorf("/readyz answered %q", body)
			}
			last = err
			return err == nil, nil
		})
	if err != nil && last != nil {
		return fmt.Errorf("not ready after %v: %w", readyTimeout, last)
	}
	return err
}
