package scale

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// lostNode deletes a simulated node's Node object (its pods stay, bound
// to it, as when a node is lost) and measures the time until the
// reclaimer has freed their addresses.
func (r *sizeRun) lostNode(start time.Time) {
	node := r.nodes[len(r.nodes)-1]
	if len(r.nodes) == r.sz.real {
		r.f.note("no simulated node to lose")
		return
	}
	n := 0
	for _, p := range r.pods {
		if p.node == node && p.added {
			n++
		}
	}
	r.step(start, "losing node %s (%d pods)", node, n)
	before, err := readController(r.ctx, r.ctl)
	if err != nil {
		r.fatal("plexus-controller metrics: %v", err)
	}
	t0 := time.Now()
	if err := r.env.Client.CoreV1().Nodes().Delete(r.ctx, node, metav1.DeleteOptions{}); err != nil {
		r.fatal("deleting node %s: %v", node, err)
	}
	_, err = waitController(r.ctx, r.ctl, time.Minute, func(s controllerState) bool { return s.freed-before.freed >= float64(n) })
	r.f.lostPods, r.f.lostFreed = n, time.Since(t0).Seconds()
	if err != nil {
		r.f.note("lost node: %d allocations not freed within a minute", n)
	}
	for _, p := range r.pods {
		if p.node == node {
			p.added = false
		}
	}
}

// delPhase runs the runtime's DEL, paced, for the pods of the first
// third of the nodes (the real ones among them), then deletes those pods.
func (r *sizeRun) delPhase(start time.Time, m *ipam) {
	third := max(len(r.nodes)/3, r.sz.real)
	var dels []*pod
	for i, p := range r.pods {
		if i%len(r.nodes) < third && p.added {
			dels = append(dels, p)
		}
	}
	r.step(start, "DEL phase: %d DELs at %.0f/s", len(dels), r.cfg.addRate)
	s0 := r.apiScrape()
	r.f.del = m.paced(r.phaseCtx(len(dels)), "DEL", dels, r.cfg.addRate, r.cfg.inflight)
	time.Sleep(time.Second)
	d := diff(s0, r.apiScrape())
	r.f.delReq, r.f.delBytes = perOp(d.requests, len(r.f.del.all)), perOp(d.watchBytes, len(r.f.del.all))
	r.f.delFailures = r.f.del.failed
	r.f.note("requests per DEL: %s", top(d.byVerb, 8, float64(max(1, len(r.f.del.all)))))
	if r.f.del.failed > 0 {
		r.f.problem("%d of %d DELs failed, first: %v", r.f.del.failed, r.f.del.ops, r.f.del.firstErr)
	}
	zero := int64(0)
	r.parallel(len(dels), 16, func(ctx context.Context, i int) error {
		err := r.env.Client.CoreV1().Pods(r.podNS).Delete(ctx, dels[i].name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
		if err == nil || isNotFound(err) {
			return nil
		}
		return err
	})
}

// drain deletes every remaining pod at once (no DEL: the reclaimer frees
// their addresses) and measures the frees per second.
func (r *sizeRun) drain(start time.Time) {
	n := 0
	for _, p := range r.pods {
		if p.added {
			n++
		}
	}
	r.step(start, "drain: deleting %d pods at once", n)
	before, err := readController(r.ctx, r.ctl)
	if err != nil {
		r.fatal("plexus-controller metrics: %v", err)
	}
	s0 := r.apiScrape()
	zero := int64(0)
	t0 := time.Now()
	err = r.env.Client.CoreV1().Pods(r.podNS).DeleteCollection(r.ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
	if err != nil {
		r.fatal("deleting the pods: %v", err)
	}
	last, lastAt := before, t0
	_, err = waitController(r.ctx, r.ctl, r.cfg.drainTimeout, func(s controllerState) bool {
		if s.freed > last.freed {
			last, lastAt = s, time.Now()
		}
		return s.freed-before.freed >= float64(n)
	})
	r.f.drainPods, r.f.drainFreed = n, int(last.freed-before.freed)
	r.f.drainTook = lastAt.Sub(t0).Seconds()
	d := diff(s0, r.apiScrape())
	r.f.drainReq = perOp(d.requests, r.f.drainFreed)
	r.f.note("requests per free in the drain: %s", top(d.byVerb, 8, float64(max(1, r.f.drainFreed))))
	if err != nil {
		// Not done in time: the rate so far, over the whole wait.
		r.f.drainTook = time.Since(t0).Seconds()
		r.f.note("drain: %d of %d allocations freed within %s", r.f.drainFreed, n, r.cfg.drainTimeout)
	}
	for _, p := range r.pods {
		p.added = false
	}
}
