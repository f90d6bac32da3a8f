package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/plexus-cni/plexus/internal/daemon/metrics"
)

// latency reads a plexusd's metrics address and prints its phases.
func TestLatencyFromDaemonURL(t *testing.T) {
	m := metrics.New()
	for range 4 {
		m.Admitted("ADD", time.Millisecond)
		m.ObservePhase("plan", "", 3*time.Millisecond)
		m.ObservePhase("delegate", "macvlan", 12*time.Millisecond)
	}
	srv := httptest.NewServer(http.StripPrefix("", m.Handler()))
	defer srv.Close()
	stdout, stderr, code := runCmd(t, "", "latency", "--daemon-url", srv.URL)
	if code != 0 || !strings.Contains(stdout, "delegate   macvlan  4") || !strings.Contains(stdout, ": 4 ADDs;") {
		t.Errorf("exit %d, stderr %q, stdout\n%s", code, stderr, stdout)
	}
	stdout, _, code = runCmd(t, "", "latency", "--daemon-url", srv.URL, "-o", "json")
	if code != 0 || !strings.Contains(stdout, `"adds": 4`) || !strings.Contains(stdout, `"plugin": "macvlan"`) {
		t.Errorf("json: exit %d\n%s", code, stdout)
	}
	if _, stderr, code := runCmd(t, "", "latency", "node-1", "--daemon-url", srv.URL); code != exitUsage || !strings.Contains(stderr, "not both") {
		t.Errorf("node and URL: exit %d, stderr %q", code, stderr)
	}
}
