package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	return string(body)
}

// The node's pool gauge is read from the source at each scrape: a space
// the node no longer uses loses its series; without a source there are
// none. The cluster-wide pool gauge is plexus-controller's, not plexusd's.
func TestPoolGauges(t *testing.T) {
	m := New()
	if text := scrape(t, m); strings.Contains(text, "plexusd_ipam_node_allocations{") {
		t.Fatalf("pool series without a source:\n%s", text)
	}
	node := map[PoolKey]int64{{"kube-system", "net:a"}: 2, {"kube-system", "net:b"}: 1}
	m.SetPoolSource(func() map[PoolKey]int64 { return node })
	text := scrape(t, m)
	for _, want := range []string{
		`plexusd_ipam_node_allocations{namespace="kube-system",space="net:a"} 2`,
		`plexusd_ipam_node_allocations{namespace="kube-system",space="net:b"} 1`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("scrape lacks %s", want)
		}
	}
	if strings.Contains(text, "plexusd_ipam_pool_allocated_addresses") {
		t.Errorf("plexusd exports the cluster-wide pool gauge:\n%s", text)
	}
	delete(node, PoolKey{"kube-system", "net:b"})
	if text := scrape(t, m); strings.Contains(text, `space="net:b"`) {
		t.Errorf("a space the node no longer uses keeps its series")
	}
}

// /ipam requests have their own series.
func TestIPAMRequests(t *testing.T) {
	m := New()
	m.IPAM().Observe("ADD", []string{"macvlan"}, 3*time.Millisecond, 0)
	m.IPAM().Observe("DEL", nil, time.Millisecond, 11)
	text := scrape(t, m)
	for _, want := range []string{
		`plexusd_ipam_request_duration_seconds_count{command="ADD",network="macvlan"} 1`,
		`plexusd_ipam_request_duration_seconds_count{command="DEL",network="-"} 1`,
		`plexusd_ipam_errors_total{code="11",command="DEL"} 1`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("scrape lacks %s", want)
		}
	}
	if strings.Contains(text, `plexusd_cni_request_duration_seconds_count{`) {
		t.Error("an /ipam request was counted as a CNI request")
	}
}
