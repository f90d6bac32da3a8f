package metrics

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestRecorded(t *testing.T) {
	m := New()
	m.Reconciled("networks", 3*time.Millisecond, nil)
	m.Reconciled("networks", time.Millisecond, errors.New("conflict"))
	m.Reconciled("ipam", time.Second, nil)
	m.Reclaimed("free")
	m.Reclaimed("free")
	m.Reclaimed("reserve")
	m.Admitted(Validating, "NetworkAttachmentDefinition", time.Millisecond, false)
	m.Admitted(Validating, "Pod", time.Millisecond, true)
	m.Admitted(Mutating, "Pod", time.Millisecond, true)
	m.Admitted(Mutating, "Pod", time.Millisecond, true)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`plexus_controller_reconcile_total{controller="networks",result="success"} 1`,
		`plexus_controller_reconcile_total{controller="networks",result="error"} 1`,
		`plexus_controller_reconcile_duration_seconds_count{controller="ipam"} 1`,
		`plexus_controller_ipam_reclaimed_total{action="free"} 2`,
		`plexus_controller_ipam_reclaimed_total{action="reserve"} 1`,
		`plexus_webhook_admission_duration_seconds_count{kind="Pod",webhook="validating"} 1`,
		`plexus_webhook_admission_duration_seconds_count{kind="Pod",webhook="mutating"} 2`,
		`plexus_webhook_denials_total{kind="NetworkAttachmentDefinition",webhook="validating"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, `plexus_webhook_denials_total{kind="Pod"`) {
		t.Error("an allowed review counted as a denial")
	}
}

// A nil *Metrics records nothing and does not panic.
func TestNil(t *testing.T) {
	var m *Metrics
	m.Reconciled("x", 0, nil)
	m.Reclaimed("free")
	m.Admitted(Mutating, "Pod", 0, false)
}

// A replica that has reconciled nothing (a standby) exports every
// reconcile and reclaim series at 0.
func TestSeriesExistBeforeAnyPass(t *testing.T) {
	m := New()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`plexus_controller_reconcile_total{controller="ipam",result="success"} 0`,
		`plexus_controller_reconcile_total{controller="networks",result="error"} 0`,
		`plexus_controller_ipam_reclaimed_total{action="free"} 0`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// The pool gauge reads its source at every scrape: series of a space that
// is gone go away, and a replica without a source exports none.
func TestPoolGauge(t *testing.T) {
	m := New()
	scrape := func() string {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return rec.Body.String()
	}
	if body := scrape(); strings.Contains(body, "plexus_controller_ipam_pool_allocated_addresses{") {
		t.Fatalf("pool series without a source:\n%s", body)
	}
	pools := map[PoolKey]int64{{"kubernetes", "kube-system", "net:a"}: 5, {"etcd", "", "net:b"}: 2}
	m.SetPoolSource(func() map[PoolKey]int64 { return pools })
	body := scrape()
	for _, want := range []string{
		`plexus_controller_ipam_pool_allocated_addresses{namespace="kube-system",space="net:a",store="kubernetes"} 5`,
		`plexus_controller_ipam_pool_allocated_addresses{namespace="",space="net:b",store="etcd"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	delete(pools, PoolKey{"etcd", "", "net:b"})
	if body := scrape(); strings.Contains(body, `space="net:b"`) {
		t.Error("series of a space that is gone still exported")
	}
	m.SetPoolSource(nil)
	if body := scrape(); strings.Contains(body, "plexus_controller_ipam_pool_allocated_addresses{") {
		t.Error("pool series after the source was removed (leadership lost)")
	}
}
