// Package chaos is `make chaos`: plexus-ipam under injected faults, with
// figures. Sandboxes are added and deleted by the real plexus-ipam binary,
// run as a runtime runs it, on both stores, while the suite SIGKILLs the
// binary mid-request (and then runs the runtime's DEL), stops and starts
// the store (kube-apiserver, or etcd), kills plexus-controller's IPAM
// reclaimer mid-pass, and loses DELs (a pod deleted without one, left to
// the reclaimer). After a final reconcile pass it demands zero
// duplicates, zero leaked allocations or holder records, and pool usage
// equal to the live sandboxes, and prints one table.
//
// It runs only when PLEXUS_CHAOS=1 (hack/chaos.sh sets it), on a private
// test bed whose API server it stops and starts: never the shared one.
package chaos

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"k8s.io/klog/v2"

	"github.com/plexus-cni/plexus/internal/testbed"
)

// config is the run's size and fault rates (environment overrides).
type config struct {
	ops       int           // ADDs per store (CHAOS_OPS)
	workers   int           // concurrent runtimes (CHAOS_WORKERS)
	perWorker int           // live sandboxes a worker keeps at most
	duration  time.Duration // bound of one store's run (CHAOS_DURATION)
	stores    []string      // CHAOS_STORES: kubernetes,etcd
	modes     []string      // CHAOS_MODES: process (plexus-ipam alone), plexusd
	pKillAdd  float64       // SIGKILL of an ADD
	pKillDel  float64       // SIGKILL of a DEL (the runtime retries it)
	pLostDel  float64       // pod deleted without a DEL
	grace     time.Duration // the reclaimer's grace period
	logDir    string        // CHAOS_LOG_DIR: the reclaimer's and plugins' logs
}

func loadConfig(t *testing.T) config {
	c := config{
		ops: intEnv("CHAOS_OPS", 10000), workers: intEnv("CHAOS_WORKERS", 20), perWorker: 5,
		duration: time.Duration(intEnv("CHAOS_DURATION", 1800)) * time.Second,
		stores:   strings.Split(envOr("CHAOS_STORES", "kubernetes,etcd"), ","),
		modes:    strings.Split(envOr("CHAOS_MODES", "process,plexusd"), ","),
		pKillAdd: 0.2, pKillDel: 0.1, pLostDel: 0.02, grace: 3 * time.Second,
		logDir: os.Getenv("CHAOS_LOG_DIR"),
	}
	if c.logDir == "" {
		c.logDir = t.TempDir()
	}
	return c
}

// quietKlog sends client-go's own log lines (requests cut short when the
// suite kills the reclaimer) to a file instead of the table's output.
func quietKlog(t *testing.T, dir string) {
	f, err := os.OpenFile(filepath.Join(dir, "klog.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatalf("klog log: %v", err)
	}
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	for k, v := range map[string]string{"logtostderr": "false", "alsologtostderr": "false", "stderrthreshold": "FATAL"} {
		if err := fs.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	klog.SetOutput(f)
	t.Cleanup(func() { klog.Flush(); f.Close() })
}

func intEnv(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func TestChaosIPAM(t *testing.T) {
	if os.Getenv("PLEXUS_CHAOS") != "1" {
		t.Skip("the chaos suite runs with PLEXUS_CHAOS=1 on a private test bed (make chaos)")
	}
	env := testbed.Require(t)
	cfg := loadConfig(t)
	quietKlog(t, cfg.logDir)
	bin := filepath.Join(testbed.Root(), "bin", "plexus-ipam")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%v: run `make build`", err)
	}
	var rows []row
	for _, mode := range cfg.modes {
		if mode != "process" && mode != "plexusd" {
			t.Fatalf("CHAOS_MODES: unknown mode %q (process, plexusd)", mode)
		}
		for _, name := range cfg.stores {
			t.Run(name+"/"+mode, func(t *testing.T) {
				r := newRun(t, env, cfg, bin, name, mode == "plexusd")
				rows = append(rows, r.execute())
			})
		}
	}
	printTable(os.Stdout, rows)
	for _, r := range rows {
		if p := r.problems(); p != "" {
			t.Errorf("%s store: %s", r.store, p)
		}
	}
}

// row is one store's figures.
type row struct {
	store                        string
	adds, addOK, dels            int64
	killAdd, killDel, lostDel    int64
	storeStops, ctlKills, ctlMid int64
	daemonKills                  int64
	runtimeDups, dups, leaked    int
	delLeaks                     int
	stray, lost, undeleted       int
	live, usage                  int
	index                        uint64
	wall                         time.Duration
}

// problems says what breaks the promise, "" when nothing does.
func (r row) problems() string {
	var p []string
	add := func(n int, what string) {
		if n > 0 {
			p = append(p, fmt.Sprintf("%d %s", n, what))
		}
	}
	add(r.runtimeDups+r.dups, "duplicate addresses")
	add(r.delLeaks, "allocations left by a successful DEL")
	add(r.leaked, "leaked allocations after the final reconcile")
	add(r.stray, "stray holder records")
	add(r.lost, "live sandboxes without their allocation")
	add(r.undeleted, "DELs that never succeeded")
	if r.usage != r.live {
		p = append(p, fmt.Sprintf("pool usage %d for %d live sandboxes", r.usage, r.live))
	}
	if r.index > uint64(r.usage) {
		p = append(p, fmt.Sprintf("the index marks %d addresses, %d are allocated", r.index, r.usage))
	}
	return strings.Join(p, ", ")
}

func printTable(w io.Writer, rows []row) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "store\tADDs (ok)\tDELs\tkill ADD\tkill DEL\tlost DEL\tstore stops\tplexusd kills\tctl kills (mid-pass)\tduplicates\tDEL leaks\tleaks\tstray records\tusage/live (index)\twall\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d (%d)\t%d\t%d\t%d\t%d\t%d\t%d\t%d (%d)\t%d\t%d\t%d\t%d\t%d/%d (%d)\t%s\t\n", r.store, r.adds, r.addOK, r.dels,
			r.killAdd, r.killDel, r.lostDel, r.storeStops, r.daemonKills, r.ctlKills, r.ctlMid, r.runtimeDups+r.dups, r.delLeaks, r.leaked+r.lost,
			r.stray, r.usage, r.live, r.index, r.wall.Round(time.Second))
	}
	tw.Flush()
}
