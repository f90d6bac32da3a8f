package scale

import (
	"math"
	"strings"
	"testing"
)

func TestFitLineRecoversALine(t *testing.T) {
	l := fitLine([]float64{50, 100, 200}, []float64{110, 210, 410})
	if math.Abs(l.a-10) > 1e-9 || math.Abs(l.b-2) > 1e-9 {
		t.Fatalf("fit = %+v, want a=10 b=2", l)
	}
	if got := l.at(1000); math.Abs(got-2010) > 1e-6 {
		t.Fatalf("at(1000) = %v, want 2010", got)
	}
}

func TestFitLineOfOnePointIsFlat(t *testing.T) {
	if l := fitLine([]float64{50}, []float64{7}); l.a != 7 || l.b != 0 {
		t.Fatalf("fit = %+v, want the flat line 7", l)
	}
}

func TestParseSizes(t *testing.T) {
	got, err := parseSizes("300x50x4, 60x10")
	if err != nil {
		t.Fatal(err)
	}
	want := []size{{300, 50, 4}, {60, 10, 1}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("parseSizes = %v, want %v", got, want)
	}
	for _, bad := range []string{"", "10x2x3", "ax1", "1x2x3x4", "0x1x1"} {
		if _, err := parseSizes(bad); err == nil {
			t.Errorf("parseSizes(%q): no error", bad)
		}
	}
}

// The API server's series are read by label: requests by group without
// WATCHes and without non-resource URLs, watch bytes by group, open
// watches by group/version/resource/scope.
func TestDiffOfAPIServerScrapes(t *testing.T) {
	const before = `# TYPE apiserver_request_total counter
apiserver_request_total{group="plexus.dev",resource="ipallocations",verb="POST",code="201"} 10
apiserver_request_total{group="",resource="pods",verb="GET",code="200"} 5
apiserver_request_total{group="",resource="pods",verb="WATCH",code="200"} 3
apiserver_request_total{group="",resource="",verb="GET",code="200"} 100
# TYPE apiserver_watch_events_sizes histogram
apiserver_watch_events_sizes_bucket{group="plexus.dev",kind="IPSpace",version="v1alpha1",le="+Inf"} 4
apiserver_watch_events_sizes_sum{group="plexus.dev",kind="IPSpace",version="v1alpha1"} 4000
apiserver_watch_events_sizes_count{group="plexus.dev",kind="IPSpace",version="v1alpha1"} 4
# TYPE apiserver_longrunning_requests gauge
apiserver_longrunning_requests{group="",resource="pods",scope="cluster",subresource="",verb="WATCH",version="v1"} 2
`
	after := strings.NewReplacer(`"201"} 10`, `"201"} 16`, `verb="GET",code="200"} 5`, `verb="GET",code="200"} 6`,
		`verb="WATCH",code="200"} 3`, `verb="WATCH",code="200"} 5`, `"",verb="GET",code="200"} 100`, `"",verb="GET",code="200"} 900`,
		`_sum{group="plexus.dev",kind="IPSpace",version="v1alpha1"} 4000`, `_sum{group="plexus.dev",kind="IPSpace",version="v1alpha1"} 10000`,
		`version="v1"} 2`, `version="v1"} 6`).Replace(before)
	b, err := parseScrape(strings.NewReader(before))
	if err != nil {
		t.Fatal(err)
	}
	a, err := parseScrape(strings.NewReader(after))
	if err != nil {
		t.Fatal(err)
	}
	d := diff(b, a)
	if d.requests["plexus.dev"] != 6 || d.requests[""] != 1 || d.watchesEnded != 2 {
		t.Errorf("requests %v, watches ended %v; want plexus.dev 6, core 1, 2 watches", d.requests, d.watchesEnded)
	}
	if d.watchBytes["plexus.dev"] != 6000 {
		t.Errorf("watch bytes %v, want plexus.dev 6000", d.watchBytes)
	}
	specs := detectWatches(openWatches(b), openWatches(a), 2)
	if len(specs) != 1 || specs[0].perNode != 2 || !specs[0].cluster || specs[0].gvr.Resource != "pods" {
		t.Fatalf("detected %v, want 2 cluster-wide pod watches per node", specs)
	}
	if f, l := specs[0].selectors("n1"); f != "spec.nodeName=n1" || l != "" {
		t.Errorf("pod watch selectors %q %q, want spec.nodeName=n1", f, l)
	}
}

// The node the lost-node phase deletes (the last, simulated) holds a node
// of the target's size; every other node gets pods too.
func TestNodeOfGivesTheLostNodeItsThirty(t *testing.T) {
	nodes := []string{"n1", "n2", "n3", "n4", "n5"}
	count := map[string]int{}
	for i := range 200 {
		count[nodeOf(i, 200, nodes, 2)]++
	}
	if count["n5"] != lostPods {
		t.Errorf("the lost node holds %d pods, want %d", count["n5"], lostPods)
	}
	for _, n := range nodes[:4] {
		if count[n] < 40 {
			t.Errorf("node %s holds %d pods, want its share of the other 170", n, count[n])
		}
	}
	if got := nodeOf(7, 40, nodes, 2); got != "n3" {
		t.Errorf("with fewer than 60 pods: pod 7 on %s, want n3 (round robin)", got)
	}
	if got := nodeOf(199, 200, nodes[:2], 2); got != "n2" {
		t.Errorf("no simulated node: pod 199 on %s, want n2 (round robin)", got)
	}
}

// A drain's time is fitted in the pods drained, and never extrapolated
// below what the controller's QPS allows at the fitted requests per free.
func TestDrainAt(t *testing.T) {
	sizes := func(took func(n float64) float64, reqs func(pods float64) float64) []*figures {
		var fs []*figures
		for _, pods := range []int{200, 400, 800, 1600} {
			n := float64(pods) * 2 / 3
			fs = append(fs, &figures{size: size{pods: pods}, drainFreed: int(n), drainTook: took(float64(int(n))),
				drainReq: map[string]float64{"plexus.dev": reqs(float64(pods))}, controllerQPS: 200})
		}
		return fs
	}
	flat := func(float64) float64 { return 3.3 }
	for _, c := range []struct {
		name string
		fs   []*figures
		want float64
	}{
		{"slower than the QPS allows: the fit", sizes(func(n float64) float64 { return 0.5 + 0.02*n }, flat), 0.5 + 0.02*3000},
		{"as fast as the QPS allows: the bound", sizes(func(n float64) float64 { return 0.5 + 0.01*n }, flat), 3000 * 3.3 / 200},
		{"requests per free falling with N: the largest size's", sizes(func(n float64) float64 { return 0.5 + 0.01*n }, func(pods float64) float64 { return 4 - pods/1000 }),
			3000 * 2.4 / 200},
		{"requests per free growing with N", sizes(func(n float64) float64 { return 0.5 + 0.01*n }, func(pods float64) float64 { return 3 + pods/10000 }),
			3000 * (3 + 3.0) / 200},
	} {
		got, how := drainAt(c.fs)
		if math.Abs(got-c.want) > 1e-6*c.want {
			t.Errorf("%s: drainAt = %.3f s (%s), want %.3f s", c.name, got, how, c.want)
		}
	}
	if got, _ := drainAt([]*figures{{size: size{pods: 200}}}); !math.IsInf(got, 1) {
		t.Errorf("drainAt with no frees = %v, want +Inf (never met)", got)
	}
}

// The controller's flags come with the defaults its --help prints.
func TestControllerFlag(t *testing.T) {
	help := "Kubernetes:\n      --kube-api-qps float   requests per second (see (a)) (default 200)\n      --kubeconfig string    kubeconfig file\n"
	if got := helpFlags(help); len(got) != 2 || got["kube-api-qps"] != "200" || got["kubeconfig"] != "" {
		t.Errorf("helpFlags = %v, want kube-api-qps 200 and kubeconfig without a default", got)
	}
	c := config{controllerFlags: map[string]string{"kube-api-qps": "200", "ipam-namespaces": ""},
		controllerExtra: map[string]string{"ipam-namespaces": "ipam", "kube-api-burst": "900"}}
	for flag, want := range map[string]string{"kube-api-qps": "200", "ipam-namespaces": "ipam", "kube-api-burst": ""} {
		if got := c.controllerFlag(flag); got != want {
			t.Errorf("controllerFlag(%q) = %q, want %q", flag, got, want)
		}
	}
}
