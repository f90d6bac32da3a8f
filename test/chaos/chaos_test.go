// Package chaos is `make chaos`: plexus under injected faults, with
// figures (docs/reliability.md). Its IPAM suite adds and deletes sandboxes
// with the real plexus-ipam binary, run as a runtime runs it, on both
// stores, alone and through plexusd, while it SIGKILLs the binary
// mid-request (and then runs the runtime's DEL), stops and starts the
// store (kube-apiserver, or etcd), kills plexusd and plexus-controller's
// IPAM reclaimer mid-pass, and loses DELs (a pod deleted without one, left
// to the reclaimer). After a final reconcile pass it demands zero
// duplicates, zero leaked allocations or holder records, and pool usage
// equal to the live sandboxes. Its meta-plugin suite adds and deletes pods
// through the real plexus binary (libcni, a network namespace per pod, the
// reference plugins) on a simulated node whose plexusd it kills, with
// delegates killed mid-ADD and the API server stopped during DELs, and
// demands that no interface, host-local lease or attachment record is
// left. It prints one table.
//
// It runs only when PLEXUS_CHAOS=1 (hack/chaos.sh sets it), on a private
// test bed whose API server it stops and starts: never the shared one.
package chaos

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

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

	metaCycles    int     // pods added and deleted through plexus (CHAOS_META_CYCLES)
	metaWorkers   int     // pods at once (CHAOS_META_WORKERS)
	pKillDelegate float64 // SIGKILL of a delegate's ADD
}

func loadConfig(t *testing.T) config {
	c := config{
		ops: intEnv("CHAOS_OPS", 10000), workers: intEnv("CHAOS_WORKERS", 20), perWorker: 5,
		duration: time.Duration(intEnv("CHAOS_DURATION", 1800)) * time.Second,
		stores:   strings.Split(envOr("CHAOS_STORES", "kubernetes,etcd"), ","),
		modes:    strings.Split(envOr("CHAOS_MODES", "process,plexusd"), ","),
		pKillAdd: 0.2, pKillDel: 0.1, pLostDel: 0.02, grace: 3 * time.Second,
		logDir:     os.Getenv("CHAOS_LOG_DIR"),
		metaCycles: intEnv("CHAOS_META_CYCLES", 2000), metaWorkers: intEnv("CHAOS_META_WORKERS", 4), pKillDelegate: 0.05,
	}
	if c.logDir == "" {
		c.logDir = t.TempDir()
	}
	return c
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

// TestChaos runs the suites CHAOS_SUITES names (ipam, meta; default
// both) and prints one table.
func TestChaos(t *testing.T) {
	if os.Getenv("PLEXUS_CHAOS") != "1" {
		t.Skip("the chaos suite runs with PLEXUS_CHAOS=1 on a private test bed (make chaos)")
	}
	env := testbed.Require(t)
	cfg := loadConfig(t)
	testbed.QuietKlog(t, cfg.logDir)
	var rows []tableRow
	for _, suite := range strings.Split(envOr("CHAOS_SUITES", "ipam,meta"), ",") {
		switch suite {
		case "ipam":
			rows = append(rows, ipamSuite(t, env, cfg)...)
		case "meta":
			t.Run("meta-plugin", func(t *testing.T) { rows = append(rows, done(newMetaRun(t, env, cfg).execute())) })
		default:
			t.Fatalf("CHAOS_SUITES: unknown suite %q (ipam, meta)", suite)
		}
	}
	printTable(os.Stdout, rows)
	for _, r := range rows {
		if r.problems != "" {
			t.Errorf("%s: %s", r.name, r.problems)
		}
	}
}

// ipamSuite runs plexus-ipam on every store in every mode.
func ipamSuite(t *testing.T, env *testbed.Env, cfg config) []tableRow {
	bin := filepath.Join(testbed.Root(), "bin", "plexus-ipam")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%v: run `make build`", err)
	}
	var rows []tableRow
	for _, mode := range cfg.modes {
		if mode != "process" && mode != "plexusd" {
			t.Fatalf("CHAOS_MODES: unknown mode %q (process, plexusd)", mode)
		}
		for _, name := range cfg.stores {
			t.Run("ipam/"+name+"/"+mode, func(t *testing.T) {
				r := newRun(t, env, cfg, bin, name, mode == "plexusd")
				rows = append(rows, done(r.execute().table()))
			})
		}
	}
	return rows
}

// tableRow is one line of the table: a suite's run.
type tableRow struct {
	name, ops, faults, dups, leaks string
	wall                           time.Duration
	problems                       string // "" when the promise held
}

// done prints a run's row as soon as it ends, so that a long run stopped
// later (or killed) does not lose the figures of the runs before it.
func done(r tableRow) tableRow {
	fmt.Printf("chaos: %s done: %s; faults: %s; duplicates %s; leaks %s; %s\n", r.name, r.ops, r.faults, r.dups, r.leaks, r.wall.Round(time.Second))
	return r
}

func printTable(w io.Writer, rows []tableRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "run\toperations\tfaults injected\tduplicates\tleaks after reconcile\twall")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.name, r.ops, r.faults, r.dups, r.leaks, r.wall.Round(time.Second))
	}
	tw.Flush()
}

// problemList names the non-zero counts, "" when all are zero.
func problemList(counts map[string]int) string {
	var p []string
	for what, n := range counts {
		if n > 0 {
			p = append(p, fmt.Sprintf("%d %s", n, what))
		}
	}
	slices.Sort(p)
	return strings.Join(p, ", ")
}

// row is one IPAM run's figures.
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

// table renders r; its problems are what breaks the promise.
func (r row) table() tableRow {
	stop := "apiserver stopped"
	if strings.HasPrefix(r.store, "etcd") {
		stop = "etcd killed"
	}
	faults := fmt.Sprintf("plugin killed: ADD %d, DEL %d; lost DEL %d; %s %d; controller killed %d (%d mid-pass)",
		r.killAdd, r.killDel, r.lostDel, stop, r.storeStops, r.ctlKills, r.ctlMid)
	if r.daemonKills > 0 {
		faults += fmt.Sprintf("; plexusd killed %d", r.daemonKills)
	}
	p := problemList(map[string]int{"duplicate addresses": r.runtimeDups + r.dups,
		"allocations left by a successful DEL": r.delLeaks, "leaked allocations after the final reconcile": r.leaked,
		"stray holder records": r.stray, "live sandboxes without their allocation": r.lost, "DELs that never succeeded": r.undeleted})
	if r.usage != r.live {
		p = strings.TrimPrefix(p+fmt.Sprintf(", pool usage %d for %d live sandboxes", r.usage, r.live), ", ")
	}
	if r.index > uint64(r.usage) {
		p = strings.TrimPrefix(p+fmt.Sprintf(", the index marks %d addresses, %d are allocated", r.index, r.usage), ", ")
	}
	return tableRow{
		name:   "ipam " + r.store,
		ops:    fmt.Sprintf("%d ADD (%d ok), %d DEL", r.adds, r.addOK, r.dels),
		faults: faults,
		dups:   fmt.Sprint(r.runtimeDups + r.dups),
		leaks: fmt.Sprintf("%d (after DEL %d, stray records %d, lost %d; usage %d = live %d, index %d)",
			r.leaked, r.delLeaks, r.stray, r.lost, r.usage, r.live, r.index),
		wall:     r.wall,
		problems: p,
	}
}
