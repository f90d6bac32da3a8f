package alloc

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of testdata transcripts")

// step is one command of a transcript and the output it must produce.
type step struct {
	line     int
	cmd      string
	args     []string
	expected string
}

// readTranscript parses "command args\n----\noutput\n\n" blocks; lines
// starting with # outside outputs are comments.
func readTranscript(t *testing.T, path string) []step {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("opening %s: %v", path, err)
	}
	defer f.Close()
	var steps []step
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		s := step{line: line, cmd: fields[0], args: fields[1:]}
		if !sc.Scan() || strings.TrimSpace(sc.Text()) != "----" {
			t.Fatalf("%s:%d: %q is not followed by ----", path, line, text)
		}
		line++
		var out []string
		for sc.Scan() {
			line++
			if sc.Text() == "" {
				break
			}
			out = append(out, sc.Text())
		}
		s.expected = strings.Join(out, "\n")
		steps = append(steps, s)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return steps
}

func writeTranscript(t *testing.T, path string, steps []step, got []string) {
	t.Helper()
	var b strings.Builder
	for i, s := range steps {
		fmt.Fprintf(&b, "%s\n----\n%s\n\n", strings.Join(append([]string{s.cmd}, s.args...), " "), got[i])
	}
	if err := os.WriteFile(path, []byte(strings.TrimSuffix(b.String(), "\n")), 0o644); err != nil {
		t.Fatalf("rewriting %s: %v", path, err)
	}
}

// runTranscripts runs every testdata/<glob> file through handle, which
// returns the output of one step given the per-file state.
func runTranscripts[S any](t *testing.T, glob string, newState func() S, handle func(t *testing.T, st S, s step) string) {
	files, err := filepath.Glob(filepath.Join("testdata", glob))
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts testdata/%s (err %v)", glob, err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			steps := readTranscript(t, path)
			st := newState()
			got := make([]string, len(steps))
			for i, s := range steps {
				got[i] = strings.TrimRight(handle(t, st, s), "\n")
				if !*rewrite && got[i] != s.expected {
					t.Errorf("%s:%d: %s %s\ngot:\n%s\nwant:\n%s", path, s.line, s.cmd, strings.Join(s.args, " "), got[i], s.expected)
				}
			}
			if *rewrite {
				writeTranscript(t, path, steps, got)
			}
		})
	}
}

// kv splits key=value arguments; bare words are returned under "".
func kv(args []string) map[string]string {
	m := map[string]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			k, v = "", a
		}
		m[k] = v
	}
	return m
}
