package lint

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func problems(r *Report) []string {
	out := []string{}
	for _, p := range r.Problems {
		out = append(out, p.String())
	}
	return out
}

func TestLint(t *testing.T) {
	tests := []struct {
		name        string
		input       string
		opts        Options
		wantObjects int
		want        []string
	}{
		{name: "empty", input: "", want: []string{}},
		{name: "comments and separators only", input: "# c\n---\n---\n", want: []string{}},
		{name: "other kinds are skipped", input: "kind: Service\nmetadata: {name: s, annotations: {k8s.v1.cni.cncf.io/networks: 'a,'}}\n", want: []string{}},
		{name: "pod namespace option", opts: Options{Namespace: "team"}, wantObjects: 1,
			input: "kind: Pod\nmetadata:\n  name: p\n  annotations:\n    k8s.v1.cni.cncf.io/networks: x@\n",
			want:  []string{`f.yaml:5: Pod team/p: metadata.annotations[k8s.v1.cni.cncf.io/networks]: networks[0].interface: invalid value "x@": interface must not be empty`}},
		{name: "line numbers across documents", wantObjects: 2,
			input: "kind: Pod\nmetadata: {name: a}\n---\n# two\nkind: Pod\nmetadata:\n  name: b\n  namespace: n\n  annotations: {v1.multus-cni.io/default-network: 'x,y'}\n",
			want:  []string{`f.yaml:9: Pod n/b: metadata.annotations[v1.multus-cni.io/default-network]: default-network: invalid value "x,y": must select exactly one network, got 2`}},
		{name: "aliases are followed", wantObjects: 1,
			input: "x: &ann {k8s.v1.cni.cncf.io/networks: 'a/b/c'}\nkind: Pod\nmetadata:\n  name: p\n  annotations: *ann\n",
			want:  []string{`f.yaml:1: Pod default/p: metadata.annotations[k8s.v1.cni.cncf.io/networks]: networks[0]: invalid value "a/b/c": more than one '/'; want [namespace/]name[@interface]`}},
		{name: "typed list items", wantObjects: 1,
			input: "kind: PodList\nitems:\n- kind: Pod\n  metadata: {name: p, annotations: {k8s.v1.cni.cncf.io/networks: 'A'}}\n",
			want:  []string{`f.yaml:4: Pod default/p: metadata.annotations[k8s.v1.cni.cncf.io/networks]: networks[0].name: invalid value "A": name must be a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', starting and ending with a letter or digit)`}},
		{name: "unnamed pod template object", wantObjects: 1,
			input: "kind: PodTemplate\ntemplate:\n  metadata:\n    annotations:\n      k8s.v1.cni.cncf.io/networks: '[1]'\n",
			want:  []string{`f.yaml:5: PodTemplate default/<unnamed>: template.metadata.annotations[k8s.v1.cni.cncf.io/networks]: networks[0]: invalid value "1": must be a JSON object`}},
		{name: "NAD config not a string", wantObjects: 1,
			input: "kind: NetworkAttachmentDefinition\nmetadata: {name: n}\nspec:\n  config: {type: macvlan}\n",
			want:  []string{`f.yaml:4: NetworkAttachmentDefinition default/n: spec.config: must be a string holding the CNI configuration JSON`}},
		{name: "NAD message not prefixed twice", wantObjects: 1,
			input: "kind: NetworkAttachmentDefinition\nmetadata: {name: n}\nspec:\n  config: '{\"type\":\"macvlan\",\"ipam\":{\"type\":\"static\",\"addresses\":[{\"address\":\"10.0.0.1\"}]}}'\n",
			want:  []string{`f.yaml:4: NetworkAttachmentDefinition default/n: spec.config.ipam.addresses[0].address: invalid value "10.0.0.1": not a CIDR (like 192.0.2.0/24)`}},
		{name: "invalid YAML does not hide later documents", wantObjects: 1,
			input: "a: b: c\n---\nkind: Pod\nmetadata: {name: p, annotations: {k8s.v1.cni.cncf.io/networks: 'a,'}}\n",
			want: []string{
				`f.yaml:1: invalid YAML: mapping values are not allowed in this context`,
				`f.yaml:4: Pod default/p: metadata.annotations[k8s.v1.cni.cncf.io/networks]: networks[1]: empty item (a stray or trailing ',')`}},
		{name: "scalar document", input: "--- hello\n", want: []string{`f.yaml:1: document is not a Kubernetes object (a mapping)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Lint(strings.NewReader(tt.input), "f.yaml", tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, problems(r)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if len(r.Objects) != tt.wantObjects {
				t.Errorf("%d objects, want %d: %+v", len(r.Objects), tt.wantObjects, r.Objects)
			}
		})
	}
}

func TestLintParsedSelections(t *testing.T) {
	in := "kind: Pod\nmetadata:\n  name: p\n  namespace: app\n  annotations:\n    v1.multus-cni.io/default-network: bare\n    k8s.v1.cni.cncf.io/networks: a@x,other/b\n"
	r, err := Lint(strings.NewReader(in), "f", Options{DefaultNetworkNamespace: "plexus-system"})
	if err != nil {
		t.Fatal(err)
	}
	o := r.Objects[0]
	if o.DefaultNetwork == nil || o.DefaultNetwork.Namespace != "plexus-system" || o.DefaultNetwork.Name != "bare" {
		t.Errorf("default network = %+v", o.DefaultNetwork)
	}
	if len(o.Networks) != 2 || o.Networks[0].Namespace != "app" || o.Networks[0].InterfaceName != "x" || o.Networks[1].Namespace != "other" {
		t.Errorf("networks = %+v", o.Networks)
	}
}

func TestSplitDocuments(t *testing.T) {
	got := splitDocuments("a: 1\n---\nb: 2\n--- # c\nc: 3\n----\n")
	want := []document{{"a: 1\n", 1}, {"---\nb: 2\n", 2}, {"--- # c\nc: 3\n----\n", 4}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(document{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestSummary(t *testing.T) {
	r := &Report{Objects: make([]Object, 1), Problems: make([]Problem, 2)}
	if got := r.Summary(); got != "1 object checked, 2 problems" {
		t.Errorf("Summary = %q", got)
	}
}

// lintAll lints each input as a file of its own, merges the reports and
// checks the references across them, as plexusctl lint does.
func lintAll(t *testing.T, inputs ...string) *Report {
	t.Helper()
	var all Report
	for i, in := range inputs {
		r, err := Lint(strings.NewReader(in), fmt.Sprintf("f%d.yaml", i), Options{})
		if err != nil {
			t.Fatal(err)
		}
		all.Merge(r)
	}
	all.CheckReferences()
	return &all
}

func TestCheckReferences(t *testing.T) {
	nads := "kind: NetworkAttachmentDefinition\nmetadata: {name: a, namespace: team}\nspec: {config: '{\"cniVersion\":\"1.0.0\",\"type\":\"macvlan\"}'}\n" +
		"---\nkind: NetworkAttachmentDefinition\nmetadata: {name: from-disk, namespace: team}\n" +
		"---\nkind: NetworkAttachmentDefinition\nmetadata: {name: broken, namespace: team}\nspec: {config: '{}'}\n"
	pod := func(networks string) string {
		return "kind: Pod\nmetadata:\n  name: p\n  namespace: team\n  annotations:\n    k8s.v1.cni.cncf.io/networks: '" + networks + "'\n"
	}
	const field = "f1.yaml:6: Pod team/p: metadata.annotations[k8s.v1.cni.cncf.io/networks]: "
	const broken = `f0.yaml:10: NetworkAttachmentDefinition team/broken: spec.config.type: is required (a plugin configuration needs "type", a configuration list needs "plugins")`
	tests := []struct {
		name   string
		inputs []string
		want   []string
	}{
		{"present in another file", []string{nads, pod("a,from-disk,broken")}, []string{broken}},
		{"missing from a namespace given", []string{nads, pod("a,b")},
			[]string{broken,
				field + "networks[1]: network team/b: NetworkAttachmentDefinition team/b: not found in the files given (they hold team's a, broken, from-disk)"}},
		{"namespace not given", []string{pod("b,other/c")}, []string{}},
		{"the cluster network's interface", []string{pod("b@eth0")},
			[]string{"f0.yaml:6: Pod team/p: metadata.annotations[k8s.v1.cni.cncf.io/networks]: interface name \"eth0\" is requested by both the cluster network (attachment 0) and team/b (attachment 1)"}},
		{"capability not declared", []string{nads, pod(`[{"name":"a","mac":"02:00:00:00:00:01"},{"name":"b","mac":"02:00:00:00:00:02"},{"name":"from-disk","mac":"02:00:00:00:00:03"}]`)},
			[]string{broken,
				field + `networks[0].mac: network team/a does not support it: no plugin of team/a declares the capability "mac"`}},
		{"default network", []string{nads, "kind: Pod\nmetadata:\n  name: q\n  annotations:\n    v1.multus-cni.io/default-network: team/b\n"},
			[]string{broken,
				"f1.yaml:5: Pod default/q: metadata.annotations[v1.multus-cni.io/default-network]: default network team/b: NetworkAttachmentDefinition team/b: not found in the files given (they hold team's a, broken, from-disk)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, problems(lintAll(t, tt.inputs...))); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMisplacedAnnotationWarns(t *testing.T) {
	in := "kind: Deployment\nmetadata:\n  name: d\n  annotations:\n    k8s.v1.cni.cncf.io/networks: a\n" +
		"spec:\n  template:\n    metadata:\n      annotations:\n        k8s.v1.cni.cncf.io/networks: a\n" +
		"---\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    k8s.v1.cni.cncf.io/networks: a\n"
	r := lintAll(t, in)
	want := []string{"f0.yaml:5: warning: Deployment default/d: metadata.annotations[k8s.v1.cni.cncf.io/networks]: is ignored: pods take their networks from spec.template.metadata.annotations"}
	if diff := cmp.Diff(want, problems(r)); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	if r.Errors() != 0 || r.Summary() != "2 objects checked, 0 problems, 1 warning" {
		t.Errorf("%d errors, summary %q; a warning is not a problem", r.Errors(), r.Summary())
	}
}

// A plexus-ipam configuration without a store of its own is valid (the
// node's plexusd supplies one) but works only where plexusd wrote its
// defaults: a warning, not a problem. Naming a store, or a Whereabouts
// configuration (whose installation writes its own flat file), is quiet.
func TestLintIPAMWithoutStore(t *testing.T) {
	nad := func(name, config string) string {
		return "---\nkind: NetworkAttachmentDefinition\nmetadata: {name: " + name + "}\nspec:\n  config: '" + config + "'\n"
	}
	in := nad("bare", `{"type":"macvlan","ipam":{"type":"plexus-ipam","range":"198.51.100.0/24"}}`) +
		nad("listed", `{"cniVersion":"1.0.0","plugins":[{"type":"macvlan","ipam":{"type":"static"}},{"type":"bridge","ipam":{"type":"plexus-ipam","range":"192.0.2.0/24"}}]}`) +
		nad("kube", `{"type":"macvlan","ipam":{"type":"plexus-ipam","range":"198.51.100.0/24","kubernetes":{"kubeconfig":"/k"}}}`) +
		nad("etcd", `{"type":"macvlan","ipam":{"type":"plexus-ipam","range":"198.51.100.0/24","etcd_host":"127.0.0.1:2379"}}`) +
		nad("flat", `{"type":"macvlan","ipam":{"type":"plexus-ipam","range":"198.51.100.0/24","configuration_path":"/c"}}`) +
		nad("wb", `{"type":"macvlan","ipam":{"type":"whereabouts","range":"198.51.100.0/24"}}`)
	r := lintAll(t, in)
	var got []string
	for _, p := range r.Problems {
		if p.Severity != Warning || p.Check != CheckIPAMStore {
			t.Errorf("finding %v: severity %q, check %q", p, p.Severity, p.Check)
		}
		got = append(got, p.Object+" "+p.Field)
	}
	want := []string{"NetworkAttachmentDefinition default/bare spec.config.ipam", "NetworkAttachmentDefinition default/listed spec.config.plugins[1].ipam"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(problems(r)[0], "f0.yaml:5: warning: NetworkAttachmentDefinition default/bare: spec.config.ipam: names no store") ||
		r.Errors() != 0 || r.Summary() != "6 objects checked, 0 problems, 2 warnings" {
		t.Errorf("%v, summary %q", problems(r), r.Summary())
	}
}
