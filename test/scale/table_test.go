package scale

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
)

// The cluster the targets are for.
const (
	targetNodes = 1000
	targetPods  = 30 * targetNodes
	drainPods   = 3000
	lostPods    = 30
)

// line is y = a + b·x.
type line struct{ a, b float64 }

func (l line) at(x float64) float64 { return l.a + l.b*x }

// fitLine is the least-squares line through the points; with one point
// (or all at one x) it is the flat line through their mean.
func fitLine(xs, ys []float64) line {
	n := float64(len(xs))
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx, sy, sxx, sxy = sx+xs[i], sy+ys[i], sxx+xs[i]*xs[i], sxy+xs[i]*ys[i]
	}
	den := n*sxx - sx*sx
	if n < 2 || math.Abs(den) < 1e-9 {
		return line{a: sy / n}
	}
	b := (n*sxy - sx*sy) / den
	return line{a: (sy - b*sx) / n, b: b}
}

// variable is what a figure grows with: the nodes (watchers, per-node
// load) or the pods (objects the controller caches and sweeps).
type variable struct {
	name   string
	of     func(size) float64
	target float64
}

var (
	byNodes = variable{"M", func(s size) float64 { return float64(s.nodes) }, targetNodes}
	byPods  = variable{"N", func(s size) float64 { return float64(s.pods) }, targetPods}
)

// figureRow is one line of the table: a figure of every size, its fit
// and extrapolation, and its target.
type figureRow struct {
	name  string
	value func(*figures) float64
	x     *variable // nil: no extrapolation
	// extrapolate, when set, replaces the fit's value at the target size.
	extrapolate func(fs []*figures) (float64, string)
	target      float64
	targetText  string // "" : no target
	below       bool   // met when < target (else ≤)
}

func sum(m map[string]float64) float64 { return total(m) }

// rows lists the table's figures.
func rows() []figureRow {
	ms := func(d func(*figures) time.Duration) func(*figures) float64 {
		return func(f *figures) float64 { return float64(d(f).Microseconds()) / 1000 }
	}
	return []figureRow{
		{name: "API requests per ADD, plexus.dev", value: func(f *figures) float64 { return f.addReq["plexus.dev"] }, x: &byNodes},
		{name: "API requests per ADD, core", value: func(f *figures) float64 { return f.addReq[""] }, x: &byNodes},
		{name: "watch bytes per ADD, all", value: func(f *figures) float64 { return sum(f.addBytes) }, x: &byNodes,
			target: 10 * 1024, targetText: "≤ 10 KB"},
		{name: "watch bytes per ADD, plexus.dev", value: func(f *figures) float64 { return f.addBytes["plexus.dev"] }, x: &byNodes},
		{name: "API requests per DEL, plexus.dev", value: func(f *figures) float64 { return f.delReq["plexus.dev"] }, x: &byNodes},
		{name: "API requests per DEL, core", value: func(f *figures) float64 { return f.delReq[""] }, x: &byNodes},
		{name: "watch bytes per DEL, all", value: func(f *figures) float64 { return sum(f.delBytes) }, x: &byNodes},
		{name: "open watches", value: func(f *figures) float64 { return f.openWatches }, x: &byNodes},
		{name: "watches re-opened/min, idle, measured", value: func(f *figures) float64 { return f.idleWatchMin }, x: &byNodes},
		{name: "watches re-opened/min, expected (open/7.5 min)", value: func(f *figures) float64 { return f.expectReopenM }, x: &byNodes},
		{name: "idle API requests/s, cluster (re-opens: max of the two above)", value: idleLoad, x: &byNodes,
			target: 20, targetText: "≤ 20/s"},
		{name: "a real plexusd alone, idle: requests/min", value: func(f *figures) float64 { return f.nodeIdleReqMin },
			extrapolate: func(fs []*figures) (float64, string) {
				return mean(fs, func(f *figures) float64 { return f.nodeIdleReqMin }) * targetNodes / 60, "mean × 1,000 nodes, per s"
			}, target: 20, targetText: "≤ 20/s"},
		{name: "a real plexusd alone, idle: watches re-opened/min", value: func(f *figures) float64 { return f.nodeIdleWatchMin }},
		{name: "plexusd RSS, MiB (largest)", value: func(f *figures) float64 { return f.plexusdRSS }, x: &byPods,
			target: 60, targetText: "≤ 60 MB"},
		{name: "plexusd start to ready, s (slowest)", value: func(f *figures) float64 { return f.plexusdReady }, x: &byNodes},
		{name: "controller start to first pass done, s", value: func(f *figures) float64 { return f.ctlStart }, x: &byPods,
			target: 5, targetText: "≤ 5 s"},
		{name: "controller first pass, s", value: func(f *figures) float64 { return f.ctlPass }, x: &byPods},
		{name: "controller RSS, MiB", value: func(f *figures) float64 { return f.controllerRSS }, x: &byPods,
			target: 500, targetText: "≤ 500 MB"},
		{name: "lost node: its pods freed after, s", value: func(f *figures) float64 { return f.lostFreed }, x: &byPods,
			extrapolate: lostNode, target: 5, targetText: "30 pods ≤ 5 s"},
		{name: "lost node: pods on it", value: func(f *figures) float64 { return float64(f.lostPods) }},
		{name: "drain: frees/s", value: func(f *figures) float64 { return f.freesPerSecond() }, x: &byPods,
			extrapolate: func(fs []*figures) (float64, string) {
				secs, how := drainAt(fs)
				return drainPods / secs, "3,000 / " + how
			}},
		{name: "drain: API requests per free, plexus.dev", value: func(f *figures) float64 { return f.drainReq["plexus.dev"] }, x: &byPods},
		{name: "drain: API requests per free, core", value: func(f *figures) float64 { return f.drainReq[""] }, x: &byPods},
		{name: "drain: pods freed / deleted", value: func(f *figures) float64 { return float64(f.drainFreed) }},
		{name: "drain: 3,000 pods, s", value: func(f *figures) float64 { return drainPods / f.freesPerSecond() },
			extrapolate: drainAt, target: 120, targetText: "≤ 120 s"},
		{name: "ADD rate reached, /s", value: func(f *figures) float64 { return f.add.rate() }},
		{name: "ADDs failed, %", value: func(f *figures) float64 { return 100 * float64(f.add.failed) / float64(max(1, f.add.ops)) }},
		{name: "ADD p50, ms", value: ms(func(f *figures) time.Duration { return pct(f.add.all, .5) }), x: &byNodes},
		{name: "ADD p99, ms", value: ms(func(f *figures) time.Duration { return pct(f.add.all, .99) }), x: &byNodes,
			target: 1000, targetText: "< 1 s at 50/s", below: true},
		{name: "ADD p99 through a real plexusd, ms", value: ms(func(f *figures) time.Duration { return pct(f.add.real, .99) }), x: &byNodes},
		{name: "DEL p99, ms", value: ms(func(f *figures) time.Duration { return pct(f.del.all, .99) }), x: &byNodes},
		{name: "wall time of the size, s", value: func(f *figures) float64 { return f.wall.Seconds() }},
	}
}

// idleLoad is the idle requests per second, the watch re-opens counted at
// the larger of the measured and the reflectors' expected rate (a window
// of a minute or two sees few of the re-opens a 5-10 minute watch
// timeout makes).
func idleLoad(f *figures) float64 { return f.idleReqS + max(f.idleWatchMin, f.expectReopenM)/60 }

func mean(fs []*figures, v func(*figures) float64) float64 {
	t := 0.0
	for _, f := range fs {
		t += v(f)
	}
	return t / float64(len(fs))
}

// drainAt extrapolates the time of a 3,000-pod drain at 30,000 pods: the
// larger of its time fitted linearly in the pods drained (the intercept
// holds the wait for the first pass and the controller client's burst;
// a time per free that grew with the cluster would bend the line up) and
// the time the store client's QPS allows: 3,000 frees × plexus.dev
// requests per free (fitted in N, at least the largest size's) / QPS, the
// burst left out. The latter bounds the drain's rate: each free is a few
// requests of the store's own client.
func drainAt(fs []*figures) (float64, string) {
	var ns, ts, xs, reqs []float64
	qps := 0.0
	for _, f := range fs {
		if f.drainFreed > 0 && f.drainTook > 0 {
			ns, ts = append(ns, float64(f.drainFreed)), append(ts, f.drainTook)
			xs, reqs = append(xs, float64(f.size.pods)), append(reqs, f.drainReq["plexus.dev"])
		}
		qps = f.controllerQPS
	}
	if len(ns) == 0 {
		return math.Inf(1), "no frees measured"
	}
	fit := fitLine(ns, ts)
	how := fmt.Sprintf("max(%.3g + %.3g·n drained", fit.a, fit.b)
	secs := fit.at(drainPods)
	if qps > 0 {
		// Requests per free falling with N (noise) are taken no lower
		// than the largest size's.
		perFree := fitLine(xs, reqs)
		secs = max(secs, drainPods*max(perFree.at(targetPods), reqs[len(reqs)-1])/qps)
		how += fmt.Sprintf(", 3,000 × max(%.3g + %.2g·N, largest measured) requests / %g QPS", perFree.a, perFree.b, qps)
	}
	return secs, how + ")"
}

// lostNode extrapolates the lost node's time: its fit in N (at least the
// largest size's), plus the frees of the pods a node of 30 has more than
// the measured one, at the drain's rate.
func lostNode(fs []*figures) (float64, string) {
	var xs, ys []float64
	for _, f := range fs {
		xs, ys = append(xs, float64(f.size.pods)), append(ys, f.lostFreed)
	}
	l := fitLine(xs, ys)
	extra := 0.0
	if missing := lostPods - mean(fs, func(f *figures) float64 { return float64(f.lostPods) }); missing > 0 {
		drain, _ := drainAt(fs)
		extra = missing * drain / drainPods
	}
	// A line falling with N (noise over sizes whose lost node is alike)
	// would extrapolate to less than nothing: never below the largest
	// size's measured time.
	at := max(l.at(targetPods), ys[len(ys)-1])
	return at + extra, fmt.Sprintf("max(%.3g + %.3g·N, largest measured), + (30 − pods measured) × the drain's time per free", l.a, l.b)
}

func num(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "-"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 0.1 || a == 0:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.2g", v)
	}
}

// printTable writes the figures of every size, the extrapolation to
// 1,000 nodes × 30 pods and the verdicts; then each size's notes.
func printTable(w io.Writer, cfg config, fs []*figures) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := []string{"figure"}
	for _, f := range fs {
		head = append(head, f.size.String())
	}
	head = append(head, "fit", "at 1000 nodes x 30 pods", "target", "verdict")
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, r := range rows() {
		cells := []string{r.name}
		for _, f := range fs {
			cells = append(cells, num(r.value(f)))
		}
		fit, at, verdict := "-", "-", "-"
		switch {
		case r.extrapolate != nil:
			var v float64
			v, fit = r.extrapolate(fs)
			at = num(v)
			verdict = judge(r, v, len(fs))
		case r.x != nil:
			var xs, ys []float64
			for _, f := range fs {
				xs, ys = append(xs, r.x.of(f.size)), append(ys, r.value(f))
			}
			l := fitLine(xs, ys)
			v := max(0, l.at(r.x.target))
			fit, at = fmt.Sprintf("%s + %s·%s", num(l.a), num(l.b), r.x.name), num(v)
			verdict = judge(r, v, len(fs))
		}
		target := r.targetText
		if target == "" {
			target = "-"
		}
		cells = append(cells, fit, at, target, verdict)
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
	for _, f := range fs {
		var watches []string
		for _, x := range f.watches {
			watches = append(watches, x.String())
		}
		fmt.Fprintf(w, "\n%s: a plexusd watches %s; simulated watchers started in %s, %d pods created in %s\n",
			f.size, strings.Join(watches, ", "), f.simWatcherStart.Round(time.Second), f.size.pods, f.populateTook.Round(time.Second))
		fmt.Fprintf(w, "%s: ADD %d at %.1f/s (%d through real plexusds), DEL %d at %.1f/s; drain %d of %d freed in %.1f s\n",
			f.size, len(f.add.all), f.add.rate(), len(f.add.real), len(f.del.all), f.del.rate(), f.drainFreed, f.drainPods, f.drainTook)
		for _, n := range f.notes {
			fmt.Fprintf(w, "%s: note: %s\n", f.size, n)
		}
		for _, p := range f.problems {
			fmt.Fprintf(w, "%s: PROBLEM: %s\n", f.size, p)
		}
	}
	fmt.Fprintf(w, "\nfit: least squares over the sizes, y = a + b·M (nodes) or a + b·N (pods), evaluated at M = %d, N = %d;"+
		" ADD rate %.0f/s asked, grace %s\n", targetNodes, targetPods, cfg.addRate, cfg.grace)
}

// judge compares v with r's target; one size is too few to extrapolate.
func judge(r figureRow, v float64, sizes int) string {
	switch {
	case r.targetText == "":
		return "-"
	case sizes < 2 && r.extrapolate == nil:
		return "one size: no fit"
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "NOT met"
	case r.below && v < r.target, !r.below && v <= r.target:
		return "met"
	}
	return "NOT met"
}
