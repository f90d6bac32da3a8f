package scale

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/rest"
)

// sample is one Prometheus series: its labels and its value (a counter's
// or gauge's value, a histogram's sum; count holds a histogram's count).
type sample struct {
	labels       map[string]string
	value, count float64
}

// scrape is a parsed /metrics page: the series of every family.
type scrape map[string][]sample

// parseScrape reads the Prometheus text format.
func parseScrape(r io.Reader) (scrape, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse the metrics: %w", err)
	}
	out := scrape{}
	for name, fam := range families {
		for _, m := range fam.GetMetric() {
			s := sample{labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				s.labels[l.GetName()] = l.GetValue()
			}
			switch fam.GetType() {
			case dto.MetricType_COUNTER:
				s.value = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				s.value = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				s.value, s.count = m.GetHistogram().GetSampleSum(), float64(m.GetHistogram().GetSampleCount())
			case dto.MetricType_UNTYPED:
				s.value = m.GetUntyped().GetValue()
			default:
				continue
			}
			out[name] = append(out[name], s)
		}
	}
	return out, nil
}

// sum adds the values (histograms: sums) of family's series that keep
// selects (nil: all).
func (s scrape) sum(family string, keep func(l map[string]string) bool) float64 {
	total := 0.0
	for _, x := range s[family] {
		if keep == nil || keep(x.labels) {
			total += x.value
		}
	}
	return total
}

// byLabels sums family's series by the values of the named labels, keyed
// "v1/v2/...".
func (s scrape) byLabels(family string, keep func(l map[string]string) bool, names ...string) map[string]float64 {
	out := map[string]float64{}
	for _, x := range s[family] {
		if keep != nil && !keep(x.labels) {
			continue
		}
		var key bytes.Buffer
		for i, n := range names {
			if i > 0 {
				key.WriteByte('/')
			}
			key.WriteString(x.labels[n])
		}
		out[key.String()] += x.value
	}
	return out
}

// The API server's series the harness reads.
const (
	requestTotal     = "apiserver_request_total"
	watchEventSizes  = "apiserver_watch_events_sizes"
	watchEventsTotal = "apiserver_watch_events_total"
	longRunning      = "apiserver_longrunning_requests"
)

// resourceRequest keeps the API requests on resources (not /metrics,
// /readyz and the like, which the harness itself sends).
func resourceRequest(l map[string]string) bool { return l["resource"] != "" }

// notWatch keeps the requests that are not WATCHes (those count when
// the watch ends: they are the watch churn, not an operation's cost).
func notWatch(l map[string]string) bool { return resourceRequest(l) && l["verb"] != "WATCH" }

func isWatch(l map[string]string) bool { return l["verb"] == "WATCH" }

func inGroup(group string) func(map[string]string) bool {
	return func(l map[string]string) bool { return l["group"] == group }
}

func and(fs ...func(map[string]string) bool) func(map[string]string) bool {
	return func(l map[string]string) bool {
		for _, f := range fs {
			if !f(l) {
				return false
			}
		}
		return true
	}
}

// apiScrape reads kube-apiserver's own /metrics.
func apiScrape(ctx context.Context, rc rest.Interface) (scrape, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	raw, err := rc.Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the API server's metrics: %w", err)
	}
	return parseScrape(bytes.NewReader(raw))
}

// httpScrape reads a plexus process's /metrics over plain HTTP.
func httpScrape(ctx context.Context, addr string) (scrape, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/metrics: %s", addr, resp.Status)
	}
	return parseScrape(resp.Body)
}

// apiDelta is what the API server did between two scrapes.
type apiDelta struct {
	// requests by group ("" is core), WATCHes left out.
	requests map[string]float64
	// watchBytes and watchEvents sent to watchers, by group of the kind.
	watchBytes, watchEvents map[string]float64
	// watchesEnded is WATCH requests that ended (each re-opened by a
	// reflector: the churn).
	watchesEnded float64
	// lists is LIST requests (initial lists and re-lists).
	lists float64
	// byVerb is every resource request by "VERB group/resource" (core
	// resources without group), WATCHes (ended) included.
	byVerb map[string]float64
}

func diff(before, after scrape) apiDelta {
	d := apiDelta{requests: map[string]float64{}, watchBytes: map[string]float64{}, watchEvents: map[string]float64{}}
	sub := func(family string, keep func(map[string]string) bool, names ...string) map[string]float64 {
		a, b := after.byLabels(family, keep, names...), before.byLabels(family, keep, names...)
		for k, v := range b {
			a[k] -= v
		}
		return a
	}
	d.requests = sub(requestTotal, notWatch, "group")
	d.watchBytes = sub(watchEventSizes, nil, "group")
	d.watchEvents = sub(watchEventsTotal, nil, "group")
	d.watchesEnded = after.sum(requestTotal, and(resourceRequest, isWatch)) - before.sum(requestTotal, and(resourceRequest, isWatch))
	list := func(l map[string]string) bool { return resourceRequest(l) && l["verb"] == "LIST" }
	d.lists = after.sum(requestTotal, list) - before.sum(requestTotal, list)
	d.byVerb = map[string]float64{}
	for k, v := range sub(requestTotal, resourceRequest, "verb", "group", "resource") {
		if v > 0 {
			f := strings.SplitN(k, "/", 3)
			name := f[1] + "/" + f[2]
			if f[1] == "" {
				name = f[2]
			}
			d.byVerb[f[0]+" "+name] += v
		}
	}
	return d
}

// top names the n largest entries of m, each divided by per, "k v, ...".
func top(m map[string]float64, n int, per float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] || m[keys[i]] == m[keys[j]] && keys[i] < keys[j] })
	var out []string
	for i, k := range keys {
		if i == n {
			break
		}
		out = append(out, fmt.Sprintf("%s %.2f", k, m[k]/per))
	}
	return strings.Join(out, ", ")
}

func total(m map[string]float64) float64 {
	t := 0.0
	for _, v := range m {
		t += v
	}
	return t
}

// openWatches is the API server's count of open WATCH requests by
// group/version/resource/scope.
func openWatches(s scrape) map[string]float64 {
	return s.byLabels(longRunning, isWatch, "group", "version", "resource", "scope")
}
