// Package metrics defines plexusd's Prometheus metrics on a private
// registry (no global default registry): CNI request latency per command
// and network, errors by CNI code, requests in flight and queued, and the
// state of the informer caches and of the installed configuration.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NoNetwork labels a request whose networks are unknown (a failed ADD that
// rolled back, a DEL without a record, STATUS and GC).
const NoNetwork = "-"

// Metrics holds every collector plexusd updates.
type Metrics struct {
	registry *prometheus.Registry

	duration    *prometheus.HistogramVec
	errors      *prometheus.CounterVec
	inFlight    prometheus.Gauge
	queued      prometheus.Gauge
	cacheSynced *prometheus.GaugeVec
	confWritten prometheus.Gauge
}

// New registers the collectors, plus the Go runtime and process ones.
func New() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "plexusd_cni_request_duration_seconds",
			Help: "CNI request latency by command and network (network-status name); a request counts once per network it touches.",
			// 5 ms .. ~82 s: delegates, API writes and IPAM all land in here.
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 15),
		}, []string{"command", "network"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plexusd_cni_errors_total",
			Help: "Failed CNI requests by command and CNI error code.",
		}, []string{"command", "code"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "plexusd_cni_requests_in_flight",
			Help: "CNI requests being served now.",
		}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "plexusd_cni_requests_queued",
			Help: "CNI requests waiting for a free slot.",
		}),
		cacheSynced: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "plexusd_informer_synced",
			Help: "1 when the informer cache has synced, by resource.",
		}, []string{"resource"}),
		confWritten: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "plexusd_conf_file_written",
			Help: "1 when the plexus CNI configuration is in place and current.",
		}),
	}
	m.registry.MustRegister(m.duration, m.errors, m.inFlight, m.queued, m.cacheSynced, m.confWritten,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// Observe records one finished request: its latency under every network it
// touched (NoNetwork when none is known) and, when code is not 0, an error.
func (m *Metrics) Observe(command string, networks []string, d time.Duration, code uint) {
	if len(networks) == 0 {
		networks = []string{NoNetwork}
	}
	for _, n := range networks {
		m.duration.WithLabelValues(command, n).Observe(d.Seconds())
	}
	if code != 0 {
		m.errors.WithLabelValues(command, strconv.FormatUint(uint64(code), 10)).Inc()
	}
}

// InFlight adds delta to the requests being served.
func (m *Metrics) InFlight(delta float64) { m.inFlight.Add(delta) }

// Queued adds delta to the requests waiting.
func (m *Metrics) Queued(delta float64) { m.queued.Add(delta) }

// CacheSynced sets the sync state of resource's informer.
func (m *Metrics) CacheSynced(resource string, synced bool) {
	m.cacheSynced.WithLabelValues(resource).Set(boolValue(synced))
}

// ConfWritten sets whether the configuration file is in place.
func (m *Metrics) ConfWritten(ok bool) { m.confWritten.Set(boolValue(ok)) }

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
