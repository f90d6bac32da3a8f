package delegexec

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A runner SIGKILLed mid-ADD takes its delegate along, but not the IPAM
// plugin that delegate started: Reap, which the next DEL of the sandbox
// runs, stops that one before it can write its lease, and leaves alone
// the processes of other sandboxes and other commands.
func TestReapStopsWhatAKilledADDLeft(t *testing.T) {
	if dir := os.Getenv("PLEXUS_TEST_REAP_DIR"); dir != "" {
		// The helper, a runner: an ADD whose delegate starts a slow IPAM child.
		env := []string{"PATH=/usr/bin:/bin", "CNI_COMMAND=ADD", "CNI_CONTAINERID=reap-me", "DIR=" + dir}
		_, err := (&Exec{}).ExecPlugin(context.Background(), filepath.Join(dir, "delegate.sh"), nil, env)
		t.Fatalf("the delegate returned (%v); its runner should have been killed first", err)
	}
	dir := t.TempDir()
	lease := filepath.Join(dir, "lease")
	// The child records its pid, waits, then takes "the lease"; the
	// delegate waits for its child like a delegate does for its IPAM plugin.
	body := "#!/bin/sh\nsh -c 'echo $$ > \"$DIR/child.pid\"; sleep 3; echo taken > \"$DIR/lease\"' &\nwait\n"
	if err := os.WriteFile(filepath.Join(dir, "delegate.sh"), []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	bystanders := []*exec.Cmd{
		sleeper(t, "CNI_COMMAND=ADD", "CNI_CONTAINERID=someone-else"),
		sleeper(t, "CNI_COMMAND=DEL", "CNI_CONTAINERID=reap-me"),
	}
	helper := exec.Command(os.Args[0], "-test.run=^TestReapStopsWhatAKilledADDLeft$")
	helper.Env = append(os.Environ(), "PLEXUS_TEST_REAP_DIR="+dir)
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer helper.Process.Kill()
	child := waitPid(t, filepath.Join(dir, "child.pid"))
	defer syscall.Kill(child, syscall.SIGKILL)
	if err := helper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	time.Sleep(100 * time.Millisecond) // the delegate's Pdeathsig
	if state, _, ok := procStat(child); !ok || state == 'Z' {
		t.Fatalf("the IPAM child %d died with the runner: this test no longer shows what Reap is for", child)
	}

	n, err := Reap("reap-me")
	if err != nil {
		t.Fatalf("Reap: %v", err)
	}
	if n != 2 {
		t.Errorf("Reap stopped %d processes, want 2 (the IPAM child and its sleep)", n)
	}
	if state, _, ok := procStat(child); ok && state != 'Z' {
		t.Fatalf("the IPAM child %d still runs after Reap", child)
	}
	time.Sleep(3500 * time.Millisecond) // past the child's sleep
	if _, err := os.Stat(lease); !os.IsNotExist(err) {
		t.Fatalf("the interrupted ADD's child took its lease after Reap (%v)", err)
	}
	for _, b := range bystanders {
		if state, _, ok := procStat(b.Process.Pid); !ok || state == 'Z' {
			t.Errorf("Reap killed %v, which is not what an interrupted ADD of reap-me left", b.Env)
		}
	}
	if n, err := Reap("reap-me"); err != nil || n != 0 {
		t.Errorf("a second Reap: %d, %v; want 0, nil", n, err)
	}
}

func sleeper(t *testing.T, env ...string) *exec.Cmd {
	t.Helper()
	c := exec.Command("sleep", "30")
	c.Env = env
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	return c
}

func waitPid(t *testing.T, file string) int {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(file); err == nil && strings.HasSuffix(string(b), "\n") {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never written", file)
		}
	}
}
