package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `{"Action":"start","Package":"p/a"}
{"Action":"run","Package":"p/a","Test":"TestOK"}
{"Action":"output","Package":"p/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"pass","Package":"p/a","Test":"TestOK"}
{"Action":"run","Package":"p/a","Test":"TestSkip"}
{"Action":"output","Package":"p/a","Test":"TestSkip","Output":"=== RUN   TestSkip\n"}
{"Action":"output","Package":"p/a","Test":"TestSkip","Output":"    a_test.go:9: needs root\n"}
{"Action":"output","Package":"p/a","Test":"TestSkip","Output":"--- SKIP: TestSkip (0.00s)\n"}
{"Action":"skip","Package":"p/a","Test":"TestSkip"}
{"Action":"run","Package":"p/a","Test":"TestBad"}
{"Action":"output","Package":"p/a","Test":"TestBad","Output":"    a_test.go:20: got 1, want 2\n"}
{"Action":"fail","Package":"p/a","Test":"TestBad"}
{"Action":"output","Package":"p/a","Output":"FAIL\tp/a\t0.1s\n"}
{"Action":"fail","Package":"p/a"}
{"Action":"output","Package":"p/b","Output":"panic: boom\n"}
{"Action":"output","Package":"p/b","Output":"FAIL\tp/b\t0.2s\n"}
{"Action":"fail","Package":"p/b"}
{"ImportPath":"p/c [p/c.test]","Action":"build-output","Output":"c.go:1: syntax error\n"}
{"ImportPath":"p/c [p/c.test]","Action":"build-fail"}
{"Action":"output","Package":"p/d","Output":"ok  \tp/d\t0.3s\n"}
{"Action":"pass","Package":"p/d"}
go vet said something
`

func TestReport(t *testing.T) {
	var out bytes.Buffer
	o, err := report(strings.NewReader(sample), &out, "unit")
	if err != nil {
		t.Fatal(err)
	}
	if o.Passed != 1 || o.Failed != 1 || len(o.Skipped) != 1 {
		t.Errorf("passed, failed, skipped = %d, %d, %d; want 1, 1, 1", o.Passed, o.Failed, len(o.Skipped))
	}
	if got := o.Skipped["p/a.TestSkip"]; got != "a_test.go:9: needs root" {
		t.Errorf("skip reason = %q", got)
	}
	if len(o.Broken) != 1 || o.Broken[0] != "p/b" {
		t.Errorf("broken packages = %v, want [p/b]", o.Broken)
	}
	for _, want := range []string{"got 1, want 2", "panic: boom", "c.go:1: syntax error", "ok  \tp/d", "go vet said something"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report output lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "=== RUN   TestOK") {
		t.Errorf("report output shows a passing test's output:\n%s", out.String())
	}
}

func TestFinalTotals(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	for _, o := range []outcome{
		{Phase: "unit", Passed: 3, Skipped: map[string]string{"p.TestA": "needs x"}},
		{Phase: "e2e", Passed: 2, Failed: 1, Skipped: map[string]string{}},
	} {
		if err := appendState(state, o); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if code := printFinal(&out, state); code != 1 {
		t.Errorf("printFinal exit code = %d, want 1 (a test failed)", code)
	}
	for _, want := range []string{"p.TestA: needs x", "tests: 5 passed, 1 failed, 1 skipped"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("final output lacks %q:\n%s", want, out.String())
		}
	}
	_ = os.Remove(state)
}
