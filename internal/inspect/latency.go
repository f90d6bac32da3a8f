package inspect

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/plexus-cni/plexus/internal/daemon/metrics"
)

// Phase is one row of a node's ADD latency: a phase of an ADD (and for
// "delegate", the plugin type), how often it ran, and its latency.
type Phase struct {
	Phase  string        `json:"phase"`
	Plugin string        `json:"plugin,omitempty"`
	Count  uint64        `json:"count"`
	Mean   time.Duration `json:"mean"`
	P50    time.Duration `json:"p50"`
	P90    time.Duration `json:"p90"`
	P99    time.Duration `json:"p99"`
	// PerADD is the phase's total time divided by the number of ADDs:
	// what it adds to an average ADD (delegates may overlap each other).
	PerADD time.Duration `json:"perADD"`
}

// Latency is what a node's plexusd measured of its ADDs.
type Latency struct {
	// Version is plexusd's (its build-info metric; "" when it has none).
	Version string  `json:"plexusdVersion,omitempty"`
	ADDs    uint64  `json:"adds"`
	Phases  []Phase `json:"phases"`
	// Own is plexus's own time per ADD: admission wait, plan, record and
	// status (events run while status is written).
	Own time.Duration `json:"ownPerADD"`
}

// phaseOrder is the order of the phases in an ADD.
var phaseOrder = []string{"admission", "plan", "record", "delegate", "status", "events"}

// ParseLatency reads plexusd's /metrics (Prometheus text format) and
// returns its ADD phases. Quantiles are estimated from the histogram's
// buckets (linear within a bucket), as Prometheus's histogram_quantile does.
func ParseLatency(r io.Reader) (*Latency, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse the metrics: %w", err)
	}
	fam, ok := families[metrics.PhaseMetric]
	if !ok {
		return nil, fmt.Errorf("no %s in the metrics: plexusd is older than this plexusctl, or not plexusd", metrics.PhaseMetric)
	}
	out := &Latency{}
	if bi := families[metrics.BuildInfoMetric]; bi != nil {
		for _, m := range bi.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "version" {
					out.Version = l.GetValue()
				}
			}
		}
	}
	var sums []float64 // each phase's total seconds
	for _, m := range fam.GetMetric() {
		h := m.GetHistogram()
		if h == nil || h.GetSampleCount() == 0 {
			continue
		}
		p := Phase{Count: h.GetSampleCount(), Mean: seconds(h.GetSampleSum() / float64(h.GetSampleCount())),
			P50: seconds(quantile(h, 0.5)), P90: seconds(quantile(h, 0.9)), P99: seconds(quantile(h, 0.99))}
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "phase":
				p.Phase = l.GetValue()
			case "plugin":
				p.Plugin = l.GetValue()
			}
		}
		if p.Phase == "plan" {
			out.ADDs = p.Count
		}
		out.Phases = append(out.Phases, p)
		sums = append(sums, h.GetSampleSum())
	}
	for i := range out.Phases {
		p := &out.Phases[i]
		if out.ADDs > 0 {
			p.PerADD = seconds(sums[i] / float64(out.ADDs))
		}
		switch p.Phase {
		case "admission", "plan", "record", "status":
			out.Own += p.PerADD
		}
	}
	slices.SortFunc(out.Phases, func(a, b Phase) int {
		if c := rank(a.Phase) - rank(b.Phase); c != 0 {
			return c
		}
		return strings.Compare(a.Plugin, b.Plugin)
	})
	return out, nil
}

func rank(phase string) int {
	if i := slices.Index(phaseOrder, phase); i >= 0 {
		return i
	}
	return len(phaseOrder)
}

// seconds converts to a Duration, to the microsecond (float sums of many
// observations are not exact below that).
func seconds(s float64) time.Duration { return time.Duration(math.Round(s*1e6)) * time.Microsecond }

// quantile estimates the q-quantile of a histogram from its cumulative
// buckets; beyond the last finite bucket it answers that bucket's bound.
func quantile(h *dto.Histogram, q float64) float64 {
	total := float64(h.GetSampleCount())
	rankQ := q * total
	lower, below := 0.0, 0.0
	for _, b := range h.GetBucket() {
		upper, count := b.GetUpperBound(), float64(b.GetCumulativeCount())
		if math.IsInf(upper, +1) {
			break
		}
		if count >= rankQ {
			if count == below {
				return upper
			}
			return lower + (upper-lower)*(rankQ-below)/(count-below)
		}
		lower, below = upper, count
	}
	return lower
}

// WriteLatency prints l as a table.
func WriteLatency(w io.Writer, node string, l *Latency) error {
	if l.ADDs == 0 {
		_, err := fmt.Fprintf(w, "%s: no ADD measured since plexusd started\n", node)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "PHASE\tPLUGIN\tCOUNT\tMEAN\tP50\tP90\tP99\tPER ADD\n")
	for _, p := range l.Phases {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", p.Phase, orDash(p.Plugin), p.Count,
			ms(p.Mean), ms(p.P50), ms(p.P90), ms(p.P99), ms(p.PerADD))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%s: %d ADDs; plexus's own phases (admission, plan, record, status) %s per ADD\n",
		node, l.ADDs, ms(l.Own))
	return err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}
