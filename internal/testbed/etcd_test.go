package testbed

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestStartEtcdOnceProcessExits starts a "binary" that exits at once: the
// start must fail with an error saying so and return, not hang in stop
// waiting for an exit that the health check already consumed.
func TestStartEtcdOnceProcessExits(t *testing.T) {
	bin, err := exec.LookPath("false")
	if err != nil {
		t.Fatalf("no false binary: %v", err)
	}
	type result struct {
		url string
		err error
	}
	got := make(chan result, 1)
	go func() {
		url, err := startEtcdOnce(t, bin)
		got <- result{url, err}
	}()
	// A generous bound, only to turn a hang into a failure with a message.
	select {
	case r := <-got:
		if r.err == nil {
			t.Fatalf("startEtcdOnce(%s) = %q, want an error", bin, r.url)
		}
		if !strings.Contains(r.err.Error(), "etcd exited") {
			t.Errorf("startEtcdOnce(%s) error = %v, want it to say etcd exited", bin, r.err)
		}
	case <-time.After(2 * etcdReadyTimeout):
		t.Fatalf("startEtcdOnce(%s) did not return after the process exited", bin)
	}
}

// TestProcessStopAfterExit: stopping a process that has exited returns, as
// often as it is called.
func TestProcessStopAfterExit(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := watchProcess(cmd)
	<-p.done
	p.stop(time.Second)
	p.stop(time.Second)
	if p.err != nil {
		t.Errorf("exit of true: %v", p.err)
	}
}
