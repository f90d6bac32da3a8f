package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// dockerImage is what a Dockerfile of the supported subset (FROM scratch,
// ARG, LABEL, ENV, COPY, ENTRYPOINT) makes: the fields compared with a
// Spec.
type dockerImage struct {
	args       map[string]string
	labels     map[string]string // values unexpanded
	env        []string
	files      map[string]string // image path → source
	entrypoint []string
}

// parseDockerfile reads the subset; any other instruction is an error, so
// that the Dockerfile cannot gain a step the spec does not have.
func parseDockerfile(text string) (*dockerImage, error) {
	img := &dockerImage{args: map[string]string{}, labels: map[string]string{}, files: map[string]string{}}
	for _, line := range logicalLines(text) {
		instr, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		var err error
		switch strings.ToUpper(instr) {
		case "FROM":
			if rest != "scratch" {
				err = fmt.Errorf("FROM %s: the spec has no base image", rest)
			}
		case "ARG":
			k, v, _ := strings.Cut(rest, "=")
			img.args[k] = v
		case "LABEL":
			err = pairs(rest, img.labels)
		case "ENV":
			env := map[string]string{}
			err = pairs(rest, env)
			for _, k := range sortedKeys(env) {
				img.env = append(img.env, k+"="+env[k])
			}
		case "COPY":
			err = copyFiles(rest, img.files)
		case "ENTRYPOINT":
			err = json.Unmarshal([]byte(rest), &img.entrypoint)
		default:
			err = fmt.Errorf("instruction %s: not in the spec's vocabulary", instr)
		}
		if err != nil {
			return nil, fmt.Errorf("Dockerfile line %q: %w", line, err)
		}
	}
	return img, nil
}

// logicalLines joins continuation lines and drops comments and blanks.
func logicalLines(text string) []string {
	var out []string
	cur := ""
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "#") || (l == "" && cur == "") {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			cur += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		out = append(out, strings.TrimSpace(cur+l))
		cur = ""
	}
	return out
}

var pairRE = regexp.MustCompile(`^([A-Za-z0-9_.-]+)=("(?:[^"\\]|\\.)*"|\S*)\s*`)

// pairs reads key=value and key="quoted value" pairs.
func pairs(s string, into map[string]string) error {
	for s != "" {
		m := pairRE.FindStringSubmatch(s)
		if m == nil {
			return fmt.Errorf("cannot read %q as key=value", s)
		}
		v := m[2]
		if strings.HasPrefix(v, `"`) {
			if err := json.Unmarshal([]byte(v), &v); err != nil {
				return fmt.Errorf("value %s: %w", m[2], err)
			}
		}
		into[m[1]] = v
		s = s[len(m[0]):]
	}
	return nil
}

// copyFiles reads `COPY src... dst/` or `COPY src dst` (no flags).
func copyFiles(s string, into map[string]string) error {
	f := strings.Fields(s)
	if len(f) < 2 || strings.HasPrefix(f[0], "--") {
		return fmt.Errorf("want COPY sources... destination without flags")
	}
	dst, srcs := f[len(f)-1], f[:len(f)-1]
	if !strings.HasSuffix(dst, "/") {
		if len(srcs) > 1 {
			return fmt.Errorf("several sources need a destination directory ending in /")
		}
		into[dst] = srcs[0]
		return nil
	}
	for _, src := range srcs {
		into[path.Join(dst, path.Base(src))] = src
	}
	return nil
}

func TestDockerfileBuildsTheSpecsImage(t *testing.T) {
	spec, err := LoadSpec("plexus.json")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df, err := parseDockerfile(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, f := range spec.Files {
		if f.Link != "" {
			t.Errorf("spec link %s: a FROM scratch Dockerfile cannot make it", f.Path)
		}
		files[f.Path] = f.Source
	}
	// Labels compared after expansion with the same arguments: "$V",
	// "${V}" and a literal are equal when they give the same text.
	dfLabels := map[string]string{}
	for k, v := range df.labels {
		if dfLabels[k], err = expand(v, df.args); err != nil {
			t.Errorf("Dockerfile label %s: %v", k, err)
		}
	}
	specLabels, err := spec.Resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what        string
		spec, dfile any
	}{
		{"files (path → source)", files, df.files},
		{"build arguments and defaults", spec.Args, df.args},
		{"labels", specLabels, dfLabels},
		{"env", spec.Env, df.env},
		{"entrypoint", spec.Entrypoint, df.entrypoint},
	} {
		if !reflect.DeepEqual(c.spec, c.dfile) {
			t.Errorf("%s differ:\n  plexus.json: %v\n  Dockerfile:  %v", c.what, c.spec, c.dfile)
		}
	}
}

func TestDockerfileParserRefusesWhatTheSpecCannotSay(t *testing.T) {
	for _, text := range []string{
		"FROM debian\n",
		"FROM scratch\nRUN true\n",
		"FROM scratch\nUSER 65532\n",
		"FROM scratch\nCOPY --chmod=0755 bin/a /a\n",
		"FROM scratch\nCOPY bin/a bin/b /usr/bin\n",
	} {
		if _, err := parseDockerfile(text); err == nil {
			t.Errorf("parseDockerfile(%q) accepted it", text)
		}
	}
	df, err := parseDockerfile("FROM scratch\nLABEL a=\"x y\" \\\n  b=$V\nCOPY bin/a bin/b /usr/bin/\n")
	if err != nil {
		t.Fatal(err)
	}
	if df.labels["a"] != "x y" || df.labels["b"] != "$V" || df.files["/usr/bin/b"] != "bin/b" {
		t.Errorf("parsed %+v", df)
	}
}

// TestSpecShipsEveryBinary: a binary `make build` builds but the image
// lacks would be missing on every node.
func TestSpecShipsEveryBinary(t *testing.T) {
	raw, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^BINARIES\s*:=\s*(.+)$`).FindSubmatch(raw)
	if m == nil {
		t.Fatal("Makefile has no BINARIES := line")
	}
	spec, err := LoadSpec("plexus.json")
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]string{}
	for _, f := range spec.Files {
		have[f.Source] = f.Path
	}
	for _, b := range strings.Fields(string(m[1])) {
		if have["bin/"+b] != "/usr/local/bin/"+b {
			t.Errorf("spec ships bin/%s at %q, want /usr/local/bin/%s", b, have["bin/"+b], b)
		}
	}
}
