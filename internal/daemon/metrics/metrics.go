// Package metrics defines plexusd's Prometheus metrics on a private
// registry (no global default registry): CNI request latency per command
// and network, errors by CNI code, requests in flight and queued (the same
// for plexus-ipam's requests on /ipam), the state of the informer caches
// and of the installed configuration, the plexus-ipam allocations held by
// this node's pods, where an ADD spends its time (PhaseMetric), and the
// dhcp daemon plexusd supervises.
package metrics

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/plexus-cni/plexus/internal/buildinfo"
)

// NoNetwork labels a request whose networks are unknown (a failed ADD that
// rolled back, a DEL without a record, STATUS and GC).
const NoNetwork = "-"

// Metrics holds every collector plexusd updates.
type Metrics struct {
	registry *prometheus.Registry

	duration    *prometheus.HistogramVec
	phases      *prometheus.HistogramVec
	errors      *prometheus.CounterVec
	inFlight    prometheus.Gauge
	queued      prometheus.Gauge
	cacheSynced *prometheus.GaugeVec
	confWritten prometheus.Gauge
	hotplug     *prometheus.CounterVec
	dhcpUp      prometheus.Gauge
	dhcpStarts  *prometheus.CounterVec
	dhcpLeases  *prometheus.CounterVec
	ipam        *Requests
	pools       *poolCollector
}

// Requests measures the requests of one endpoint; it implements the
// server's Recorder.
type Requests struct {
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
	inFlight prometheus.Gauge
	queued   prometheus.Gauge
}

// BuildInfoMetric carries plexusd's version in its label "version".
const BuildInfoMetric = "plexusd_build_info"

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
		phases: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: PhaseMetric,
			Help: "Time an ADD spends in each phase: admission (waiting for a slot), plan, record, delegate (one attachment's delegates, by the type of its first plugin), status, events.",
			// 0.25 ms .. ~8 s: plexus's own phases are short, delegates longer.
			Buckets: prometheus.ExponentialBuckets(0.00025, 2, 16),
		}, []string{"phase", "plugin"}),
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
		hotplug: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plexusd_hotplug_operations_total",
			Help: "Hot-plug work on running pods: op add or remove (one per interface), or replug (an attempt), by result ok or error.",
		}, []string{"op", "result"}),
		dhcpUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "plexusd_dhcp_daemon_running",
			Help: "1 while the dhcp plugin's daemon plexusd supervises runs.",
		}),
		dhcpStarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plexusd_dhcp_daemon_starts_total",
			Help: "Starts of the dhcp daemon, by reason: start, or restart after it died.",
		}, []string{"reason"}),
		dhcpLeases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plexusd_dhcp_leases_reacquired_total",
			Help: "Leases of this node's sandboxes the dhcp daemon was asked to take again after a start, by result ok or error.",
		}, []string{"result"}),
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        BuildInfoMetric,
		Help:        "Always 1; its version label is plexusd's version (plexusctl compares it with its own).",
		ConstLabels: prometheus.Labels{"version": buildinfo.Version},
	})
	buildInfo.Set(1)
	m.ipam = newIPAMRequests()
	m.pools = newPoolCollector()
	m.registry.MustRegister(m.duration, m.phases, m.errors, m.inFlight, m.queued, m.cacheSynced, m.confWritten, m.hotplug,
		m.dhcpUp, m.dhcpStarts, m.dhcpLeases,
		m.ipam.duration, m.ipam.errors, m.ipam.inFlight, m.ipam.queued, m.pools, buildInfo,
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
	observe(m.duration, m.errors, command, networks, d, code)
}

func observe(duration *prometheus.HistogramVec, errors *prometheus.CounterVec, command string, networks []string, d time.Duration, code uint) {
	if len(networks) == 0 {
		networks = []string{NoNetwork}
	}
	for _, n := range networks {
		duration.WithLabelValues(command, n).Observe(d.Seconds())
	}
	if code != 0 {
		errors.WithLabelValues(command, strconv.FormatUint(uint64(code), 10)).Inc()
	}
}

// PhaseMetric is the histogram of ADD phases; plexusctl latency reads it.
const PhaseMetric = "plexusd_add_phase_duration_seconds"

// PhaseAdmission is the wait of an ADD for a free slot; the other phases
// are plexus's (internal/plugin's Phase* names).
const PhaseAdmission = "admission"

// ObservePhase records one phase of an ADD (plugin: the delegate's type,
// "" for plexus's own phases); it is the plugin's PhaseObserver.
func (m *Metrics) ObservePhase(phase, plugin string, d time.Duration) {
	m.phases.WithLabelValues(phase, plugin).Observe(d.Seconds())
}

// Admitted records how long a CNI request waited for its slot (ADDs only:
// the phases are an ADD's).
func (m *Metrics) Admitted(command string, waited time.Duration) {
	if command == "ADD" {
		m.ObservePhase(PhaseAdmission, "", waited)
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

// Hotplug counts n hot-plug operations op with result.
func (m *Metrics) Hotplug(op, result string, n int) {
	if n > 0 {
		m.hotplug.WithLabelValues(op, result).Add(float64(n))
	}
}

// DHCPDaemon sets whether the dhcp daemon runs.
func (m *Metrics) DHCPDaemon(running bool) { m.dhcpUp.Set(boolValue(running)) }

// DHCPDaemonStart counts a start of the dhcp daemon.
func (m *Metrics) DHCPDaemonStart(reason string) { m.dhcpStarts.WithLabelValues(reason).Inc() }

// DHCPLeaseReacquired counts a lease taken again.
func (m *Metrics) DHCPLeaseReacquired(result string) { m.dhcpLeases.WithLabelValues(result).Inc() }

func newIPAMRequests() *Requests {
	return &Requests{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "plexusd_ipam_request_duration_seconds",
			Help: "plexus-ipam request latency on /ipam by command and CNI network name.",
			// 1 ms .. ~16 s: a store round trip to a blocked API server.
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}, []string{"command", "network"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plexusd_ipam_errors_total",
			Help: "Failed plexus-ipam requests on /ipam by command and CNI error code.",
		}, []string{"command", "code"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "plexusd_ipam_requests_in_flight",
			Help: "plexus-ipam requests being served now.",
		}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "plexusd_ipam_requests_queued",
			Help: "plexus-ipam requests waiting for a free IPAM slot.",
		}),
	}
}

// IPAM returns the recorder of the /ipam endpoint.
func (m *Metrics) IPAM() *Requests { return m.ipam }

// Observe records one finished /ipam request (see Metrics.Observe).
func (r *Requests) Observe(command string, networks []string, d time.Duration, code uint) {
	observe(r.duration, r.errors, command, networks, d, code)
}

// InFlight adds delta to the requests being served.
func (r *Requests) InFlight(delta float64) { r.inFlight.Add(delta) }

// Queued adds delta to the requests waiting.
func (r *Requests) Queued(delta float64) { r.queued.Add(delta) }

// Admitted is not measured for /ipam.
func (r *Requests) Admitted(string, time.Duration) {}

// PoolKey names one address space: the namespace of its objects and its
// space key.
type PoolKey struct{ Namespace, Space string }

// PoolSource returns, at scrape time, the allocations held by this node's
// pods per space. The addresses allocated per space (cluster-wide) are
// plexus-controller's gauge: plexusd does not watch the IPSpaces.
type PoolSource func() map[PoolKey]int64

// SetPoolSource makes the pool gauge read src at every scrape (nil: no
// pool series).
func (m *Metrics) SetPoolSource(src PoolSource) { m.pools.src.Store(&src) }

// poolCollector emits the pool gauge from its source when scraped, so it
// is as current as the informer and series of spaces this node no longer
// uses go away by themselves.
type poolCollector struct {
	node *prometheus.Desc
	src  atomic.Pointer[PoolSource]
}

func newPoolCollector() *poolCollector {
	return &poolCollector{
		node: prometheus.NewDesc("plexusd_ipam_node_allocations",
			"plexus-ipam allocations held by pods of this node (IPAllocations labelled with it), by namespace and space.",
			[]string{"namespace", "space"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.node }

// Collect implements prometheus.Collector.
func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	src := c.src.Load()
	if src == nil || *src == nil {
		return
	}
	for k, v := range (*src)() {
		ch <- prometheus.MustNewConstMetric(c.node, prometheus.GaugeValue, float64(v), k.Namespace, k.Space)
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
