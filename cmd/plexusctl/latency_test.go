package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/plexus-cni/plexus/internal/buildinfo"
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
	if strings.Contains(stderr, "warning") {
		t.Errorf("same versions, yet stderr %q", stderr)
	}
}

// A plexusd of another version than plexusctl's gets a warning, and the
// figures all the same.
func TestLatencyWarnsOfAnotherVersion(t *testing.T) {
	defer func(v string) { buildinfo.Version = v }(buildinfo.Version)
	buildinfo.Version = "v1.0.0"
	m := metrics.New() // plexusd of v1.0.0
	m.Admitted("ADD", time.Millisecond)
	m.ObservePhase("plan", "", 3*time.Millisecond)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	buildinfo.Version = "v1.1.0" // plexusctl
	stdout, stderr, code := runCmd(t, "", "latency", "--daemon-url", srv.URL)
	want := "warning: plexusctl v1.1.0 talks to plexusd at " + srv.URL + " v1.0.0: versions differ"
	if code != 0 || !strings.Contains(stderr, want) || !strings.Contains(stdout, ": 1 ADDs;") {
		t.Errorf("exit %d, stderr %q (want %q), stdout\n%s", code, stderr, want, stdout)
	}
}
