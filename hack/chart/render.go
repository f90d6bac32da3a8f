package main

import (
	"bytes"
	"fmt"
	"path"
	"strings"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"
)

// Options say what to render: `helm template NAME CHART -n NAMESPACE` with
// Values as given by -f and --set.
type Options struct {
	Chart     string         // the chart's directory
	Name      string         // the release name
	Namespace string         // the release namespace
	Values    map[string]any // user values, merged over the chart's values.yaml
	CRDs      bool           // the chart's crds/ first, as `helm install` creates them
}

// Render renders the chart as one multi-document YAML stream: the CRDs when
// o.CRDs, then the templates' objects in Helm's install order (kinds as
// `helm install` sends them, then file names). Each document starts with a
// "# Source:" comment naming its file.
func Render(o Options) ([]byte, error) {
	ch, err := loader.Load(o.Chart)
	if err != nil {
		return nil, fmt.Errorf("loading chart %s: %w", o.Chart, err)
	}
	if err := ch.Validate(); err != nil {
		return nil, fmt.Errorf("chart %s: %w", o.Chart, err)
	}
	if o.Values == nil {
		o.Values = map[string]any{}
	}
	if err := chartutil.ProcessDependenciesWithMerge(ch, o.Values); err != nil {
		return nil, fmt.Errorf("chart %s dependencies: %w", o.Chart, err)
	}
	vals, err := chartutil.ToRenderValues(ch, o.Values, chartutil.ReleaseOptions{
		Name: o.Name, Namespace: o.Namespace, Revision: 1, IsInstall: true,
	}, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	files, err := engine.Render(ch, vals)
	if err != nil {
		return nil, err
	}
	// Partials (_helpers.tpl) render to nothing, NOTES.txt is not a manifest.
	for name := range files {
		if strings.HasSuffix(name, "NOTES.txt") || strings.HasPrefix(path.Base(name), "_") {
			delete(files, name)
		}
	}
	hooks, manifests, err := releaseutil.SortManifests(files, chartutil.DefaultVersionSet, releaseutil.InstallOrder)
	if err != nil {
		return nil, fmt.Errorf("sorting manifests: %w", err)
	}
	if len(hooks) > 0 {
		return nil, fmt.Errorf("the chart has %d hooks; this renderer does not run hooks", len(hooks))
	}
	var out bytes.Buffer
	if o.CRDs {
		for _, crd := range ch.CRDObjects() {
			fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", crd.Filename, bytes.TrimSpace(crd.File.Data))
		}
	}
	for _, m := range manifests {
		fmt.Fprintf(&out, "---\n# Source: %s\n%s\n", m.Name, strings.TrimSpace(m.Content))
	}
	return out.Bytes(), nil
}
