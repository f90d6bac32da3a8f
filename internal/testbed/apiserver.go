package testbed

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

const scriptTimeout = 3 * time.Minute

// StopAPIServer stops the test bed's kube-apiserver (etcd keeps running) and
// returns a function that starts it again with the same flags and port and
// waits until it is ready. The restart also runs in t.Cleanup, so a failing
// test never leaves the API server down; calling it twice is harmless.
//
// The API server is shared: tests running in parallel, also in other
// packages, see it go away.
func (e *Env) StopAPIServer(t testing.TB) (restart func()) {
	t.Helper()
	if out, err := runTestbedScript("stop-apiserver"); err != nil {
		t.Fatalf("stopping kube-apiserver: %v\n%s", err, out)
	}
	var once sync.Once
	restart = func() {
		once.Do(func() {
			if out, err := runTestbedScript("start-apiserver"); err != nil {
				t.Errorf("starting kube-apiserver: %v\n%s", err, out)
			}
		})
	}
	t.Cleanup(restart)
	return restart
}

func runTestbedScript(arg string) ([]byte, error) {
	root := Root()
	if root == "" {
		return nil, fmt.Errorf("repository root of module %s not found", modulePath)
	}
	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	script := filepath.Join(root, "hack", "testbed.sh")
	out, err := exec.CommandContext(ctx, script, arg).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w", script, arg, err)
	}
	return out, nil
}
