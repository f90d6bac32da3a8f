// Package metrics defines plexus-controller's Prometheus metrics on a
// private registry: reconcile passes (count by result, latency) per
// reconciler, the allocations the IPAM reclaimer freed or reserved, the
// addresses held per address space (published here, once for the cluster,
// so that no node watches the spaces), and the
// admission webhooks' latency and denials per webhook (validating,
// mutating) and kind. A nil *Metrics records
// nothing, so components built without one work unchanged.
package metrics

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds every collector plexus-controller updates.
type Metrics struct {
	registry     *prometheus.Registry
	reconciles   *prometheus.CounterVec
	reconcileDur *prometheus.HistogramVec
	reclaimed    *prometheus.CounterVec
	admissionDur *prometheus.HistogramVec
	denials      *prometheus.CounterVec
	pools        *poolCollector
}

// New registers the collectors, plus the Go runtime and process ones.
func New() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plexus_controller_reconcile_total",
			Help: "Reconcile passes by reconciler (networks: one NetworkDefinition; ipam: one sweep of every store) and result (success, error).",
		}, []string{"controller", "result"}),
		reconcileDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "plexus_controller_reconcile_duration_seconds",
			Help:    "Latency of a reconcile pass by reconciler.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16), // 1 ms .. ~33 s
		}, []string{"controller"}),
		reclaimed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plexus_controller_ipam_reclaimed_total",
			Help: "IP allocations the reclaimer acted on, by action: free (pod gone) or reserve (sticky address kept for its StatefulSet pod).",
		}, []string{"action"}),
		admissionDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "plexus_webhook_admission_duration_seconds",
			Help:    "Latency of an admission review by webhook (validating, mutating) and object kind.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5 ms .. ~4 s
		}, []string{"webhook", "kind"}),
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plexus_webhook_denials_total",
			Help: "Admission reviews denied, by webhook (validating; the mutating one never denies) and object kind.",
		}, []string{"webhook", "kind"}),
		pools: &poolCollector{desc: prometheus.NewDesc("plexus_controller_ipam_pool_allocated_addresses",
			"plexus-ipam allocations held per address space, as the leader's reclaimer sees them (its informer for the kubernetes store, its last pass for etcd), by store (kubernetes, etcd), namespace of the objects (kubernetes store) and space.",
			[]string{"store", "namespace", "space"}, nil)},
	}
	m.registry.MustRegister(m.reconciles, m.reconcileDur, m.reclaimed, m.admissionDur, m.denials, m.pools,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Every series exists from the start, at 0: a standby replica (not the
	// leader, so it reconciles nothing) exports them too, and rate() and
	// alerts see a counter that starts at 0, not one that appears later.
	for _, c := range Controllers {
		for _, r := range []string{"success", "error"} {
			m.reconciles.WithLabelValues(c, r)
		}
	}
	for _, a := range []string{"free", "reserve"} {
		m.reclaimed.WithLabelValues(a)
	}
	return m
}

// Controllers are the reconcilers that record passes.
var Controllers = []string{"networks", "ipam"}

// Reconciled records one reconcile pass.
func (m *Metrics) Reconciled(controller string, took time.Duration, err error) {
	if m == nil {
		return
	}
	result := "success"
	if err != nil {
		result = "error"
	}
	m.reconciles.WithLabelValues(controller, result).Inc()
	m.reconcileDur.WithLabelValues(controller).Observe(took.Seconds())
}

// Reclaimed records an allocation freed or reserved ("free", "reserve").
func (m *Metrics) Reclaimed(action string) {
	if m == nil {
		return
	}
	m.reclaimed.WithLabelValues(action).Inc()
}

// PoolKey names one address space of one store ("kubernetes" with the
// namespace of its objects, or "etcd").
type PoolKey struct{ Store, Namespace, Space string }

// PoolSource returns, at scrape time, the allocations held per space.
type PoolSource func() map[PoolKey]int64

// SetPoolSource makes the pool gauge read src at every scrape; nil (a
// replica that is not the leader) exports no pool series.
func (m *Metrics) SetPoolSource(src PoolSource) {
	if m != nil {
		m.pools.src.Store(&src)
	}
}

// poolCollector emits the pool gauge from its source when scraped, so
// that series of deleted spaces go away by themselves.
type poolCollector struct {
	desc *prometheus.Desc
	src  atomic.Pointer[PoolSource]
}

// Describe implements prometheus.Collector.
func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	src := c.src.Load()
	if src == nil || *src == nil {
		return
	}
	for k, v := range (*src)() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(v), k.Store, k.Namespace, k.Space)
	}
}

// Webhooks label the admission series.
const (
	Validating = "validating"
	Mutating   = "mutating"
)

// Admitted records one admission review of kind by webhook (Validating
// or Mutating).
func (m *Metrics) Admitted(webhook, kind string, took time.Duration, allowed bool) {
	if m == nil {
		return
	}
	m.admissionDur.WithLabelValues(webhook, kind).Observe(took.Seconds())
	if !allowed {
		m.denials.WithLabelValues(webhook, kind).Inc()
	}
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}
