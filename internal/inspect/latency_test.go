package inspect

import (
	"bytes"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/plexus-cni/plexus/internal/daemon/metrics"
)

// ParseLatency reads what plexusd's metrics export: counts, means, the
// quantiles within their buckets, and plexus's own time per ADD.
func TestParseLatency(t *testing.T) {
	m := metrics.New()
	for range 10 { // ten ADDs
		m.Admitted("ADD", 0)
		m.ObservePhase("plan", "", 2*time.Millisecond)
		m.ObservePhase("record", "", time.Millisecond)
		m.ObservePhase("delegate", "bridge", 20*time.Millisecond)
		m.ObservePhase("delegate", "macvlan", 10*time.Millisecond)
		m.ObservePhase("status", "", 5*time.Millisecond)
		m.ObservePhase("events", "", 4*time.Millisecond)
	}
	m.Admitted("DEL", time.Second) // not an ADD phase
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	l, err := ParseLatency(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if l.ADDs != 10 || len(l.Phases) != 7 {
		t.Fatalf("ADDs %d, phases %+v", l.ADDs, l.Phases)
	}
	var order []string
	for _, p := range l.Phases {
		order = append(order, strings.TrimSpace(p.Phase+" "+p.Plugin))
	}
	if got := strings.Join(order, ","); got != "admission,plan,record,delegate bridge,delegate macvlan,status,events" {
		t.Errorf("order %s", got)
	}
	bridge := l.Phases[3]
	if bridge.Count != 10 || bridge.Mean != 20*time.Millisecond || bridge.PerADD != 20*time.Millisecond {
		t.Errorf("bridge %+v", bridge)
	}
	// 20 ms lies in the bucket (16 ms, 32 ms]: every quantile is inside it.
	for _, q := range []time.Duration{bridge.P50, bridge.P90, bridge.P99} {
		if q <= 16*time.Millisecond || q > 32*time.Millisecond {
			t.Errorf("bridge quantile %v outside its bucket", q)
		}
	}
	if l.Own != 8*time.Millisecond {
		t.Errorf("own time per ADD %v, want 8ms (plan 2 + record 1 + status 5)", l.Own)
	}
	var out bytes.Buffer
	if err := WriteLatency(&out, "node-1", l); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"PHASE", "delegate   macvlan", "node-1: 10 ADDs; plexus's own phases (admission, plan, record, status) 8.00ms per ADD"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestParseLatencyErrors(t *testing.T) {
	if _, err := ParseLatency(strings.NewReader("other_metric 1\n")); err == nil || !strings.Contains(err.Error(), metrics.PhaseMetric) {
		t.Errorf("metrics without the phases: %v", err)
	}
	if _, err := ParseLatency(strings.NewReader("{{{")); err == nil {
		t.Error("garbage parsed")
	}
	var out bytes.Buffer
	WriteLatency(&out, "n", &Latency{})
	if !strings.Contains(out.String(), "no ADD measured") {
		t.Errorf("empty: %q", out.String())
	}
}
