package daemon

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/plexus-cni/plexus/internal/buildinfo"
	"github.com/plexus-cni/plexus/internal/daemon/metrics"
	"github.com/plexus-cni/plexus/internal/daemon/options"
)

// Every answer of plexusd's HTTP address says its version, and so do its
// metrics: plexusctl compares them with its own.
func TestHTTPAnswersCarryTheVersion(t *testing.T) {
	defer func(v string) { buildinfo.Version = v }(buildinfo.Version)
	buildinfo.Version = "v9.8.7"
	d := &Daemon{o: &options.Options{}, metrics: metrics.New()}
	srv := httptest.NewServer(d.httpHandler())
	defer srv.Close()
	for _, path := range []string{"/healthz", "/metrics", "/nonexistent"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get(buildinfo.Header); got != "v9.8.7" {
			t.Errorf("GET %s: %s %q, want v9.8.7", path, buildinfo.Header, got)
		}
	}
	rec := httptest.NewRecorder()
	d.httpHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if want := `plexusd_build_info{version="v9.8.7"} 1`; !strings.Contains(rec.Body.String(), want) {
		t.Errorf("metrics lack %q", want)
	}
}
