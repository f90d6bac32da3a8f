// Command testreport reads `go test -json` on stdin and prints what a person
// wants from a long run: each package's result line, the whole output of
// every failed test and build, and at the end every skipped test with its
// reason and a closing count line ("N passed, N failed, N skipped").
//
// Phases of one run (unit, end-to-end, ...) each pipe into their own
// testreport with the same -state file; `testreport -final -state F` then
// prints the totals of all phases. The exit status is 1 when a test or a
// build failed, so a pipeline under `set -o pipefail` fails as go test would.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json's TestEvent).
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string
}

// outcome is what a phase contributes to the totals.
type outcome struct {
	Phase   string            `json:"phase"`
	Passed  int               `json:"passed"`
	Failed  int               `json:"failed"`
	Skipped map[string]string `json:"skipped"` // "pkg.Test" -> reason
	Broken  []string          `json:"broken"`  // packages that failed without a failed test (build, panic, timeout)
}

func main() {
	phase := flag.String("phase", "tests", "name of this phase in the report")
	state := flag.String("state", "", "file that collects the outcome of every phase")
	final := flag.Bool("final", false, "print the totals of every phase recorded in -state")
	flag.Parse()
	if *final {
		os.Exit(printFinal(os.Stdout, *state))
	}
	o, err := report(os.Stdin, os.Stdout, *phase)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testreport: %v\n", err)
		os.Exit(2)
	}
	if *state != "" {
		if err := appendState(*state, o); err != nil {
			fmt.Fprintf(os.Stderr, "testreport: %v\n", err)
			os.Exit(2)
		}
	}
	printSummary(os.Stdout, []outcome{o})
	if o.Failed > 0 || len(o.Broken) > 0 {
		os.Exit(1)
	}
}

// run collects what one test or package printed.
type run struct{ lines []string }

func report(in io.Reader, out io.Writer, phase string) (outcome, error) {
	o := outcome{Phase: phase, Skipped: map[string]string{}}
	runs := map[string]*run{} // "pkg\x00Test" -> output so far
	pkgFailedTests := map[string]int{}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			fmt.Fprintln(out, string(line)) // not JSON: go vet, a script's own output
			continue
		}
		key := e.Package + "\x00" + e.Test
		if e.Action == "build-output" {
			key = "build\x00" + e.ImportPath
		}
		switch e.Action {
		case "output", "build-output":
			r := runs[key]
			if r == nil {
				r = &run{}
				runs[key] = r
			}
			r.lines = append(r.lines, e.Output)
			if e.Test == "" && e.Action == "output" && isPackageResult(e.Output) {
				fmt.Fprint(out, e.Output)
			}
		case "build-fail":
			fmt.Fprint(out, strings.Join(runs["build\x00"+e.ImportPath].lines, ""))
		case "pass":
			if e.Test != "" {
				o.Passed++
			}
			delete(runs, key)
		case "skip":
			if e.Test != "" {
				o.Skipped[e.Package+"."+e.Test] = skipReason(runs[key])
			}
			delete(runs, key)
		case "fail":
			if r := runs[key]; r != nil && e.Test != "" {
				fmt.Fprint(out, strings.Join(r.lines, ""))
			}
			if e.Test != "" {
				o.Failed++
				pkgFailedTests[e.Package]++
			} else if pkgFailedTests[e.Package] == 0 {
				// No test failed, yet the package did: a panic, a timeout or
				// a failing TestMain. Its own output says why.
				if r := runs[key]; r != nil {
					fmt.Fprint(out, strings.Join(r.lines, ""))
				}
				o.Broken = append(o.Broken, e.Package)
			}
			delete(runs, key)
		}
	}
	return o, sc.Err()
}

// isPackageResult reports whether a package-level output line is go test's
// verdict for the package ("ok  pkg 1.2s", "FAIL pkg", "?  pkg [no test files]").
func isPackageResult(s string) bool {
	return strings.HasPrefix(s, "ok  ") || strings.HasPrefix(s, "FAIL") || strings.HasPrefix(s, "?   ")
}

// skipReason is what the skipped test logged: the lines between "=== RUN"
// and "--- SKIP", trimmed and joined.
func skipReason(r *run) string {
	if r == nil {
		return "(no reason given)"
	}
	var parts []string
	for _, l := range r.lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		parts = append(parts, t)
	}
	if len(parts) == 0 {
		return "(no reason given)"
	}
	return strings.Join(parts, " ")
}

func appendState(path string, o outcome) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	return json.NewEncoder(f).Encode(o)
}

func printFinal(out io.Writer, path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testreport: %v\n", err)
		return 2
	}
	var all []outcome
	dec := json.NewDecoder(strings.NewReader(string(data)))
	for dec.More() {
		var o outcome
		if err := dec.Decode(&o); err != nil {
			fmt.Fprintf(os.Stderr, "testreport: %s: %v\n", path, err)
			return 2
		}
		all = append(all, o)
	}
	fmt.Fprintln(out, "== all phases")
	failed := printSummary(out, all)
	if failed {
		return 1
	}
	return 0
}

// printSummary prints the skips with their reasons and the closing line, and
// reports whether anything failed.
func printSummary(out io.Writer, all []outcome) bool {
	var passed, failed int
	skipped := map[string]string{}
	var broken []string
	for _, o := range all {
		passed += o.Passed
		failed += o.Failed
		broken = append(broken, o.Broken...)
		for k, v := range o.Skipped {
			skipped[k] = v
		}
	}
	if len(skipped) > 0 {
		names := make([]string, 0, len(skipped))
		for k := range skipped {
			names = append(names, k)
		}
		sort.Strings(names)
		fmt.Fprintf(out, "skipped tests (%d):\n", len(names))
		for _, n := range names {
			fmt.Fprintf(out, "  %s: %s\n", n, skipped[n])
		}
	}
	for _, b := range broken {
		fmt.Fprintf(out, "package failed outside its tests: %s\n", b)
	}
	fmt.Fprintf(out, "tests: %d passed, %d failed, %d skipped\n", passed, failed+len(broken), len(skipped))
	return failed > 0 || len(broken) > 0
}
