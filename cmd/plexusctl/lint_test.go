package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.golden files")

// checkGolden compares got with testdata/name, or rewrites it with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	file := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", file, diff)
	}
}

func runCmd(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run("plexusctl", args, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestLintGolden(t *testing.T) {
	tests := []struct {
		input    string
		wantCode int
	}{
		{"s1-macvlan.yaml", 0},
		{"s2-twice.yaml", 0},
		{"s4-whereabouts.yaml", 0},
		{"s5-standalone.yaml", 0},
		{"list.json", 1},
		{"errors.yaml", 1},
		{"broken.yaml", 1},
		{"references.yaml", 1},
	}
	for _, tt := range tests {
		for _, format := range []string{"text", "json"} {
			t.Run(tt.input+"/"+format, func(t *testing.T) {
				stdout, stderr, code := runCmd(t, "", "lint", "-f", filepath.Join("testdata", tt.input), "-o", format)
				if code != tt.wantCode {
					t.Errorf("exit code = %d, want %d (stderr %q)", code, tt.wantCode, stderr)
				}
				if stderr != "" {
					t.Errorf("stderr = %q, want empty", stderr)
				}
				golden := strings.TrimSuffix(tt.input, filepath.Ext(tt.input)) + "." + format + ".golden"
				checkGolden(t, golden, []byte(stdout))
			})
		}
	}
}

func TestLintExitCodes(t *testing.T) {
	clean := filepath.Join("testdata", "s2-twice.yaml")
	bad := filepath.Join("testdata", "errors.yaml")
	tests := []struct {
		name       string
		stdin      string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "no -f", args: []string{"lint"}, wantCode: 2, wantStderr: "plexusctl: lint: no input; give -f FILE (or -f - for stdin)\n"},
		{name: "missing file", args: []string{"lint", "-f", clean, "-f", "testdata/nope.yaml"}, wantCode: 2,
			wantStderr: "plexusctl: lint: open testdata/nope.yaml: no such file or directory\n"},
		{name: "directory", args: []string{"lint", "-f", "testdata"}, wantCode: 2,
			wantStderr: "plexusctl: read testdata: read testdata: is a directory\n"},
		{name: "bad output", args: []string{"lint", "-f", clean, "-o", "yaml"}, wantCode: 2,
			wantStderr: "plexusctl: lint: --output \"yaml\": want text or json\n"},
		{name: "unknown flag", args: []string{"lint", "--frobnicate"}, wantCode: 2,
			wantStderr: "plexusctl: unknown flag: --frobnicate\n"},
		{name: "unknown command", args: []string{"frob"}, wantCode: 2,
			wantStderr: "plexusctl: unknown command \"frob\" for \"plexusctl\"\n"},
		{name: "stray argument", args: []string{"lint", "x.yaml"}, wantCode: 2,
			wantStderr: "plexusctl: unknown command \"x.yaml\" for \"plexusctl lint\"\n"},
		{name: "clean", args: []string{"lint", "-f", clean}, wantCode: 0, wantStdout: "1 object checked, 0 problems\n"},
		{name: "clean and bad", args: []string{"lint", "-f", clean, "-f", bad}, wantCode: 1},
		{name: "stdin with namespace", stdin: "kind: Pod\nmetadata:\n  name: p\n  annotations:\n    k8s.v1.cni.cncf.io/networks: 'a,'\n",
			args: []string{"lint", "-f", "-", "-n", "team-b"}, wantCode: 1,
			wantStdout: "<stdin>:5: Pod team-b/p: metadata.annotations[k8s.v1.cni.cncf.io/networks]: networks[1]: empty item (a stray or trailing ',')\n1 object checked, 1 problem\n"},
		{name: "empty stdin", args: []string{"lint", "-f", "-"}, wantCode: 0, wantStdout: "0 objects checked, 0 problems\n"},
		{name: "version", args: []string{"version"}, wantCode: 0, wantStdout: "plexusctl dev\n"},
		{name: "kubeconfig flag accepted", args: []string{"--kubeconfig", "/nonexistent", "--context", "x", "lint", "-f", clean}, wantCode: 0,
			wantStdout: "1 object checked, 0 problems\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runCmd(t, tt.stdin, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stdout %q, stderr %q)", code, tt.wantCode, stdout, stderr)
			}
			if tt.wantStdout != "" && stdout != tt.wantStdout {
				t.Errorf("stdout = %q, want %q", stdout, tt.wantStdout)
			}
			if stderr != tt.wantStderr {
				t.Errorf("stderr = %q, want %q", stderr, tt.wantStderr)
			}
		})
	}
}

// TestLintAcrossFiles: a reference is checked against the NADs of every
// file given, and problems come out in file order.
func TestLintAcrossFiles(t *testing.T) {
	pod := "kind: Pod\nmetadata:\n  name: p\n  namespace: team\n  annotations:\n    k8s.v1.cni.cncf.io/networks: with-ips,absent\n"
	stdout, stderr, code := runCmd(t, pod, "lint", "-f", "-", "-f", filepath.Join("testdata", "references.yaml"))
	if code != exitInvalid || stderr != "" {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	lines := strings.Split(stdout, "\n")
	want := "<stdin>:6: Pod team/p: metadata.annotations[k8s.v1.cni.cncf.io/networks]: networks[1]: network team/absent: NetworkAttachmentDefinition team/absent: not found in the files given (they hold team's macvlan-conf, with-ips)"
	if lines[0] != want || !strings.HasPrefix(lines[1], "testdata/references.yaml:") {
		t.Errorf("output\n%s\nwant first\n%s", stdout, want)
	}
	if stdout, _, code := runCmd(t, pod, "lint", "-f", "-"); code != 0 || stdout != "1 object checked, 0 problems\n" {
		t.Errorf("without team's NADs: exit %d, output %q; want no problem", code, stdout)
	}
}
