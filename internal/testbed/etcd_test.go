package testbed

import (
	"io"
	"net/http"
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

// TestEtcdKillRestart: a killed etcd refuses connections; restarted, it
// serves the same URL with the data written before the kill.
func TestEtcdKillRestart(t *testing.T) {
	e := StartRestartableEtcd(t)
	if e == nil {
		return
	}
	kv := func(op, body string) (string, error) {
		resp, err := http.Post(e.URL+"/v3/kv/"+op, "application/json", strings.NewReader(body))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	// key "k" = "dg==" ("v"), base64 as the gRPC gateway wants it.
	if _, err := kv("put", `{"key":"aw==","value":"dg=="}`); err != nil {
		t.Fatalf("put: %v", err)
	}
	e.Kill()
	if _, err := kv("range", `{"key":"aw=="}`); err == nil {
		t.Fatalf("a killed etcd answered")
	}
	if err := e.Restart(); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	got, err := kv("range", `{"key":"aw=="}`)
	if err != nil || !strings.Contains(got, `"value":"dg=="`) {
		t.Errorf("after the restart, range k = %s, %v; want the value written before the kill", got, err)
	}
}
