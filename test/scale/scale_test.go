// Package scale is `make scale`: a bounded simulation of a large cluster
// on one machine, to measure what grows with the cluster (docs/scale.md).
// For each size N pods × M nodes × K real plexusds it creates M Node
// objects and N Pods (spec.nodeName set; nothing runs them), starts K
// real plexusd processes (nodes 1..K) and, for the other M-K nodes, a
// simulated plexusd: the same watches with the same selectors, read from
// the API server when the real ones started, run by client-go reflectors
// into a store that keeps nothing. plexus-controller (the binary) runs
// the IPAM reclaimer. Then, against the one API server of the test bed:
// a paced ADD phase (plexus-ipam exec'd through the real plexusds, the
// same commands in process for simulated nodes), an idle window, a
// controller restart, a lost node, a paced DEL phase and a drain. The
// figures come from the API server's own metrics, the controller's
// metrics and /proc. Each is extrapolated to 1,000 nodes × 30 pods by a
// linear fit over the sizes, and one table compares it with its target.
//
// It runs only with PLEXUS_SCALE=1 (hack/scale.sh sets it), on a private
// test bed.
package scale

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plexus-cni/plexus/internal/testbed"
)

// config is the run's sizes, rates and bounds (environment overrides).
type config struct {
	sizes        []size
	addRate      float64       // SCALE_ADD_RATE: ADDs (and DELs) per second
	inflight     int           // SCALE_INFLIGHT: operations in flight at most
	idle         time.Duration // SCALE_IDLE: the idle window
	nodeIdle     time.Duration // SCALE_NODE_IDLE: the real plexusds' own idle window
	grace        time.Duration // SCALE_GRACE: the reclaimer's grace period
	drainTimeout time.Duration // SCALE_DRAIN_TIMEOUT: bound of the drain
	duration     time.Duration // SCALE_DURATION: bound of the whole run
	cidr         string        // SCALE_CIDR: the IPAM range
	logDir       string        // SCALE_LOG_DIR: plexusd's and the controller's logs

	// controllerFlags are the flags the controller binary has, with
	// their defaults; controllerExtra those the run passes when it has them.
	controllerFlags map[string]string
	controllerExtra map[string]string
}

// size is one simulated cluster: pods × nodes, real plexusds among them.
type size struct{ pods, nodes, real int }

func (s size) String() string { return fmt.Sprintf("%dx%dx%d", s.pods, s.nodes, s.real) }

// parseSizes reads "PODSxNODESxREAL,..." (REAL defaults to 1).
func parseSizes(v string) ([]size, error) {
	var out []size
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		f := strings.Split(item, "x")
		if len(f) == 2 {
			f = append(f, "1")
		}
		if len(f) != 3 {
			return nil, fmt.Errorf("size %q: want PODSxNODESxREAL", item)
		}
		var n [3]int
		for i, s := range f {
			v, err := strconv.Atoi(s)
			if err != nil || v < 1 {
				return nil, fmt.Errorf("size %q: %q is not a positive number", item, s)
			}
			n[i] = v
		}
		if n[2] > n[1] {
			return nil, fmt.Errorf("size %q: more real plexusds than nodes", item)
		}
		out = append(out, size{pods: n[0], nodes: n[1], real: n[2]})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no sizes in %q", v)
	}
	return out, nil
}

func loadConfig(t *testing.T) config {
	sizes, err := parseSizes(envOr("SCALE_SIZES", "200x50x4,400x100x4,800x200x4,1600x400x4"))
	if err != nil {
		t.Fatalf("SCALE_SIZES: %v", err)
	}
	c := config{
		sizes: sizes, addRate: floatEnv("SCALE_ADD_RATE", 50), inflight: int(floatEnv("SCALE_INFLIGHT", 200)),
		idle: seconds("SCALE_IDLE", 45), nodeIdle: seconds("SCALE_NODE_IDLE", 20),
		grace: seconds("SCALE_GRACE", 5), drainTimeout: seconds("SCALE_DRAIN_TIMEOUT", 60),
		duration: seconds("SCALE_DURATION", 780), cidr: envOr("SCALE_CIDR", "10.128.0.0/16"),
		logDir: os.Getenv("SCALE_LOG_DIR"), controllerExtra: map[string]string{},
	}
	if c.logDir == "" {
		c.logDir = t.TempDir()
	}
	for env, flag := range map[string]string{"SCALE_KUBE_API_QPS": "kube-api-qps", "SCALE_KUBE_API_BURST": "kube-api-burst"} {
		if v := os.Getenv(env); v != "" {
			c.controllerExtra[flag] = v
		}
	}
	return c
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func floatEnv(name string, def float64) float64 {
	if v, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil && v > 0 {
		return v
	}
	return def
}

func seconds(name string, def float64) time.Duration {
	return time.Duration(floatEnv(name, def) * float64(time.Second))
}

// TestScale runs every size of SCALE_SIZES, then prints the figures, their
// extrapolation to 1,000 nodes × 30 pods and the targets.
func TestScale(t *testing.T) {
	if os.Getenv("PLEXUS_SCALE") != "1" {
		t.Skip("the scale simulation runs with PLEXUS_SCALE=1 on a private test bed (make scale)")
	}
	env := testbed.Require(t)
	cfg := loadConfig(t)
	testbed.QuietKlog(t, cfg.logDir)
	for _, b := range []string{"plexusd", "plexus-ipam", "plexus-ipam-local", "plexus-controller"} {
		if _, err := os.Stat(repoBin(b)); err != nil {
			t.Fatalf("%v: run `make build`", err)
		}
	}
	cfg.controllerFlags = controllerFlags(t)
	ctx, cancel := context.WithTimeout(t.Context(), cfg.duration)
	defer cancel()
	loadBefore := loadavg()
	fmt.Printf("scale: sizes %v (pods x nodes x real plexusds), %.0f ADDs/s, idle %s, grace %s; at most %s\n",
		cfg.sizes, cfg.addRate, cfg.idle, cfg.grace, cfg.duration)
	var done []*figures
	for _, sz := range cfg.sizes {
		if ctx.Err() != nil {
			t.Errorf("size %s: not run, the run's bound (SCALE_DURATION %s) has passed", sz, cfg.duration)
			continue
		}
		t.Run(sz.String(), func(t *testing.T) {
			start := time.Now()
			f := newSizeRun(ctx, t, env, cfg, sz).execute()
			f.wall = time.Since(start)
			fmt.Printf("scale: %s done in %s\n", sz, f.wall.Round(time.Second))
			done = append(done, f)
		})
	}
	if len(done) == 0 {
		t.Fatal("no size completed")
	}
	fmt.Println()
	printTable(os.Stdout, cfg, done)
	fmt.Printf("\nload average (1, 5, 15 min) before: %s; after: %s\n", loadBefore, loadavg())
	for _, f := range done {
		for _, p := range f.problems {
			t.Errorf("%s: %s", f.size, p)
		}
	}
}

func loadavg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(raw))[:3], " ")
}
