// Command chart renders charts/plexus, plexus's Helm chart, as `helm
// template` does, with Helm's own Go packages (helm.sh/helm/v3): no helm
// binary is needed. Its tests check that the chart's defaults are what
// `kubectl apply -k deploy/` installs, and the real-cluster tier
// (test/cluster) applies its output to install plexus from the chart.
//
//	go -C hack/chart run . -set image.tag=v1 | kubectl apply --server-side -f -
//
// It lives in its own module so that Helm's dependencies stay out of the
// plexus module and of its binaries' dependency closure.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"helm.sh/helm/v3/pkg/strvals"
	"sigs.k8s.io/yaml"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		os.Exit(1)
	}
}

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func run(argv []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("chart", flag.ContinueOnError)
	o := Options{}
	fs.StringVar(&o.Chart, "chart", defaultChart(), "the chart's directory")
	fs.StringVar(&o.Name, "name", "plexus", "release name")
	fs.StringVar(&o.Namespace, "namespace", "kube-system", "release namespace")
	fs.BoolVar(&o.CRDs, "crds", true, "render the chart's crds/ first (helm template --include-crds)")
	var files, sets listFlag
	fs.Var(&files, "f", "values file (repeatable; later files win)")
	fs.Var(&sets, "set", "KEY=VALUE as helm --set (repeatable; wins over -f)")
	if err := fs.Parse(argv); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	vals, err := userValues(files, sets)
	if err != nil {
		return err
	}
	o.Values = vals
	out, err := Render(o)
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}

// userValues merges values files, then --set values, as helm does.
func userValues(files, sets []string) (map[string]any, error) {
	vals := map[string]any{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var v map[string]any
		if err := yaml.Unmarshal(b, &v); err != nil {
			return nil, fmt.Errorf("values file %s: %w", f, err)
		}
		vals = mergeMaps(vals, v)
	}
	for _, s := range sets {
		if err := strvals.ParseInto(s, vals); err != nil {
			return nil, fmt.Errorf("-set %q: %w", s, err)
		}
	}
	return vals, nil
}

// mergeMaps merges b over a: maps key by key, anything else replaced.
func mergeMaps(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if bm, ok := v.(map[string]any); ok {
			if am, ok := out[k].(map[string]any); ok {
				out[k] = mergeMaps(am, bm)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// defaultChart is charts/plexus of the repository this module is in
// (hack/chart), found from the working directory.
func defaultChart() string {
	wd, err := os.Getwd()
	if err != nil {
		return "charts/plexus"
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if st, err := os.Stat(filepath.Join(dir, "charts", "plexus", "Chart.yaml")); err == nil && !st.IsDir() {
			return filepath.Join(dir, "charts", "plexus")
		}
		if filepath.Dir(dir) == dir {
			return "charts/plexus"
		}
	}
}
