package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"text/tabwriter"

	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/internal/testbed/nodesim"
)

// TestBenchIPAMDaemon measures ADD and DEL with net1 = macvlan +
// plexus-ipam (Kubernetes store on the test bed): plexus and plexus-ipam in
// process, through plexusd with plexus-ipam run as a binary (serveIPAM
// off: a new store client per request), and through plexusd with
// plexus-ipam's requests served on /ipam by long-lived store clients.
func TestBenchIPAMDaemon(t *testing.T) {
	if os.Getenv("PLEXUS_BENCH") != "1" {
		t.Skip("the benchmark runs with PLEXUS_BENCH=1 (make bench)")
	}
	testbed.RequireRoot(t)
	env := testbed.Require(t)
	b := &bench{t: t, env: env, ns: env.Namespace(t, "bench-ipamd"), sw: nodesim.NewSwitch(t)}
	pods := intEnv("PLEXUS_BENCH_IPAMD_PODS", 100)
	conf, _ := json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": "ipam-1", "plugins": []any{map[string]any{
		"type": "macvlan", "master": nodesim.DefaultUplink, "mode": "bridge",
		"ipam": map[string]any{"type": "plexus-ipam", "range": "198.51.100.0/24",
			"kubernetes": map[string]any{"kubeconfig": env.Kubeconfig, "namespace": b.ns}},
	}}})
	env.CreateNAD(t, b.ns, "ipam-1", string(conf))
	one := []string{"ipam-1"}
	rows := turns(pods,
		b.plexus("in process: plexus, plexus-ipam", one, 4),
		b.sequential(b.daemonNode("--serve-ipam=false", "--ipam-namespace="+b.ns), "plexusd, plexus-ipam in its own process", one),
		b.sequential(b.daemonNode("--ipam-namespace="+b.ns), "plexusd, plexus-ipam on /ipam", one))
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "net1 = macvlan + plexus-ipam\tpods\tADD p50\tADD p99\tDEL p50\tDEL p99\t")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\t\n", r.name, r.pods,
			ms(pct(r.s.add, .5)), ms(pct(r.s.add, .99)), ms(pct(r.s.del, .5)), ms(pct(r.s.del, .99)))
	}
	w.Flush()
}
