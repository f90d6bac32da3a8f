package delegexec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/internal/testbed"
)

// A delegate run with a Root sees the root it is given, not
// plexusd's: host-local's dataDir lands inside that root. Its CNI errors
// come back as they are.
func TestExecRunsDelegateInRoot(t *testing.T) {
	bin := testbed.RequireCNIPlugins(t, "host-local")
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	plugin, err := os.ReadFile(filepath.Join(bin, "host-local"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "host-local"), plugin, 0o755); err != nil {
		t.Fatal(err)
	}
	leases := "/plexus-chroot-test-" + filepath.Base(root)
	env := []string{"CNI_COMMAND=ADD", "CNI_CONTAINERID=chroot-test", "CNI_NETNS=/proc/self/ns/net", "CNI_IFNAME=net1", "CNI_PATH=/bin"}
	x := &Exec{Root: root}

	conf := `{"cniVersion":"1.0.0","name":"chrooted","type":"macvlan","ipam":{"type":"host-local","subnet":"198.51.100.0/28","dataDir":"` + leases + `"}}`
	out, err := x.ExecPlugin(context.Background(), "/bin/host-local", []byte(conf), env)
	if err != nil {
		t.Fatalf("ADD through Exec: %v", err)
	}
	if !strings.Contains(string(out), "198.51.100.2/28") {
		t.Fatalf("result %s, want 198.51.100.2/28", out)
	}
	if _, err := os.Stat(filepath.Join(root, leases, "chrooted", "198.51.100.2")); err != nil {
		t.Fatalf("the lease is not under the given root: %v", err)
	}
	if _, err := os.Stat(leases); !os.IsNotExist(err) {
		os.RemoveAll(leases)
		t.Fatalf("the lease went to plexusd's own root (%s): %v", leases, err)
	}

	_, err = x.ExecPlugin(context.Background(), "/bin/host-local", []byte(`{"cniVersion":"1.0.0","name":"bad","type":"macvlan","ipam":{"type":"host-local"}}`), env)
	var cniErr *types.Error
	if !errors.As(err, &cniErr) || cniErr.Code == 0 || cniErr.Msg == "" {
		t.Fatalf("a config host-local refuses gave %#v, want its CNI error", err)
	}
	_, err = x.ExecPlugin(context.Background(), "/bin/no-such-plugin", []byte(conf), env)
	if !errors.As(err, &cniErr) || !strings.Contains(cniErr.Msg, "/bin/no-such-plugin") {
		t.Fatalf("a missing plugin gave %v, want an error naming it", err)
	}
}

// A delegate dies with its runner: the runner (plexusd or plexus; here a
// helper process running Exec) is SIGKILLed while its delegate runs, and
// the delegate goes too, so it cannot finish an ADD after the runtime's
// DEL.
func TestDelegatesDieWithTheirRunner(t *testing.T) {
	if pidFile := os.Getenv("PLEXUS_TEST_DELEGATE_PIDFILE"); pidFile != "" {
		// The helper: run a delegate that records its pid and waits.
		script := filepath.Join(filepath.Dir(pidFile), "delegate.sh")
		x := &Exec{}
		_, err := x.ExecPlugin(context.Background(), script, nil, []string{"PIDFILE=" + pidFile})
		t.Fatalf("the delegate returned (%v); it should have been killed with its parent", err)
	}
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "delegate.pid")
	if err := os.WriteFile(filepath.Join(dir, "delegate.sh"), []byte("#!/bin/sh\necho $$ > \"$PIDFILE\"\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	helper := exec.Command(os.Args[0], "-test.run=^TestDelegatesDieWithTheirRunner$")
	helper.Env = append(os.Environ(), "PLEXUS_TEST_DELEGATE_PIDFILE="+pidFile)
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer helper.Process.Kill()
	var pid int
	for deadline := time.Now().Add(30 * time.Second); pid == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the delegate never started")
		}
		if b, err := os.ReadFile(pidFile); err == nil && strings.HasSuffix(string(b), "\n") {
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
	}
	if err := helper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && strings.Contains(string(stat), ") Z ") {
			return // killed, waiting for its reaper
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("delegate %d still runs after its runner was killed", pid)
		}
	}
}

// A delegate that fails leaves no process of its own running: the IPAM
// plugin it started (here a child that would write a lease a moment later,
// its output not on the delegate's pipes, which Run would wait for) is
// killed with it, before the caller rolls back.
func TestFailedDelegateTakesItsChildrenAlong(t *testing.T) {
	dir := t.TempDir()
	lease, pidFile := filepath.Join(dir, "lease"), filepath.Join(dir, "child.pid")
	script := filepath.Join(dir, "delegate.sh")
	// The child records its pid; the delegate fails once it has.
	body := "#!/bin/sh\nsh -c 'echo $$ > " + pidFile + "; sleep 30; echo taken > " + lease + "' >/dev/null 2>&1 &\n" +
		"while [ ! -s " + pidFile + " ]; do :; done\necho '{\"code\":11,\"msg\":\"failed on purpose\"}'\nexit 1\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := (&Exec{}).ExecPlugin(context.Background(), script, nil, []string{"PATH=/usr/bin:/bin"})
	var cniErr *types.Error
	if !errors.As(err, &cniErr) || cniErr.Code != 11 {
		t.Fatalf("ExecPlugin: %v, want the delegate's code 11", err)
	}
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if state, _, ok := procStat(pid); ok && state != 'Z' {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("the failed delegate's child (pid %d) still runs after ExecPlugin returned", pid)
	}
	if _, err := os.Stat(lease); !os.IsNotExist(err) {
		t.Fatalf("the failed delegate's child wrote %s (%v)", lease, err)
	}
}
