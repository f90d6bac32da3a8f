package webhook

import (
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
)

// patchJSON marshals ops ("null" for none), for comparison.
func patchJSON(t *testing.T, ops []patchOp) string {
	t.Helper()
	b, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestResourcePatch(t *testing.T) {
	const nic, gpu = "plexus.dev/testnic", "example.com/gpu"
	two := map[string]int{nic: 2}
	tests := []struct {
		name, spec string
		want       map[string]int
		patch      string
	}{
		{"nothing wanted", `{"containers":[{}]}`, map[string]int{}, `null`},
		{"no resources field", `{"containers":[{"name":"a"},{"name":"b"}]}`, two,
			`[{"op":"add","path":"/spec/containers/0/resources","value":{"limits":{"plexus.dev/testnic":"2"},"requests":{"plexus.dev/testnic":"2"}}}]`},
		{"resources null", `{"containers":[{"resources":null}]}`, two,
			`[{"op":"add","path":"/spec/containers/0/resources","value":{"limits":{"plexus.dev/testnic":"2"},"requests":{"plexus.dev/testnic":"2"}}}]`},
		{"empty resources", `{"containers":[{"resources":{}}]}`, two,
			`[{"op":"add","path":"/spec/containers/0/resources/requests","value":{"plexus.dev/testnic":"2"}},` +
				`{"op":"add","path":"/spec/containers/0/resources/limits","value":{"plexus.dev/testnic":"2"}}]`},
		{"requests only, claims kept", `{"containers":[{"resources":{"requests":{"cpu":"1"},"claims":[{"name":"x"}]}}]}`, two,
			`[{"op":"add","path":"/spec/containers/0/resources/requests/plexus.dev~1testnic","value":"2"},` +
				`{"op":"add","path":"/spec/containers/0/resources/limits","value":{"plexus.dev/testnic":"2"}}]`},
		{"both maps, two resources in name order", `{"containers":[{"resources":{"requests":{},"limits":{"memory":"1Gi"}}}]}`,
			map[string]int{nic: 1, gpu: 3},
			`[{"op":"add","path":"/spec/containers/0/resources/requests/example.com~1gpu","value":"3"},` +
				`{"op":"add","path":"/spec/containers/0/resources/requests/plexus.dev~1testnic","value":"1"},` +
				`{"op":"add","path":"/spec/containers/0/resources/limits/example.com~1gpu","value":"3"},` +
				`{"op":"add","path":"/spec/containers/0/resources/limits/plexus.dev~1testnic","value":"1"}]`},
		{"first container requests it already", `{"containers":[{"resources":{"requests":{"plexus.dev/testnic":"1"}}}]}`, two, `null`},
		{"another container limits it", `{"containers":[{},{"resources":{"limits":{"plexus.dev/testnic":"1"}}}]}`, two, `null`},
		{"an init container requests it", `{"initContainers":[{"resources":{"requests":{"plexus.dev/testnic":"1"}}}],"containers":[{}]}`, two, `null`},
		{"one of two set: only the other added", `{"containers":[{"resources":{"limits":{"plexus.dev/testnic":"2"}}}]}`,
			map[string]int{nic: 2, gpu: 1},
			`[{"op":"add","path":"/spec/containers/0/resources/requests","value":{"example.com/gpu":"1"}},` +
				`{"op":"add","path":"/spec/containers/0/resources/limits/example.com~1gpu","value":"1"}]`},
		{"no containers", `{}`, two, `null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var pod podView
			if err := json.Unmarshal([]byte(`{"spec":`+tt.spec+`}`), &pod); err != nil {
				t.Fatal(err)
			}
			if got := patchJSON(t, resourcePatch(&pod, tt.want)); got != tt.patch {
				t.Errorf("patch\n got %s\nwant %s", got, tt.patch)
			}
		})
	}
}

func TestEscapePointer(t *testing.T) {
	for in, want := range map[string]string{"cpu": "cpu", "a/b/c": "a~1b~1c", "x~y/z": "x~0y~1z", "~1": "~01"} {
		if got := escapePointer(in); got != want {
			t.Errorf("escapePointer(%q) = %q, want %q", in, got, want)
		}
	}
}

// injPod is a pod in namespace tomcat with annotations (JSON members) and
// one container without resources.
func injPod(annotations string) []byte {
	return []byte(`{"metadata":{"name":"p","annotations":{` + annotations + `}},"spec":{"containers":[{"name":"c"}]}}`)
}

// TestInjectorPod counts attachments per resource from the NADs, as the
// webhook answers them.
func TestInjectorPod(t *testing.T) {
	nads := fakeNADs{"tomcat/sriov": "plexus.dev/testnic", "tomcat/plain": "", "kube-system/dflt": "plexus.dev/testnic",
		"other/sriov": "plexus.dev/othernic", "tomcat/gpu-net": "example.com/gpu"}
	const nets, def = `"k8s.v1.cni.cncf.io/networks":`, `"v1.multus-cni.io/default-network":`
	added := func(n string) string {
		return `[{"op":"add","path":"/spec/containers/0/resources","value":{"limits":{` + n + `},"requests":{` + n + `}}}]`
	}
	tests := []struct {
		name, ann string
		policy    Policy
		patch     string // "" for none
		warn      string // "" for none
	}{
		{"no annotations", `"a":"b"`, Policy{}, "", ""},
		{"two attachments and a plain one", nets + `"sriov,plain,sriov"`, Policy{}, added(`"plexus.dev/testnic":"2"`), ""},
		{"JSON form, two resources", nets + `"[{\"name\":\"sriov\"},{\"name\":\"gpu-net\",\"interface\":\"g0\"}]"`, Policy{},
			added(`"example.com/gpu":"1","plexus.dev/testnic":"1"`), ""},
		{"default network counts", nets + `"sriov",` + def + `"dflt"`, Policy{}, added(`"plexus.dev/testnic":"2"`), ""},
		{"default network in the configured namespace", def + `"sriov"`, Policy{DefaultNetworkNamespace: "tomcat"},
			added(`"plexus.dev/testnic":"1"`), ""},
		{"plain NADs only", nets + `"plain,plain"`, Policy{}, "", ""},
		{"missing NAD injects nothing for it", nets + `"absent,sriov"`, Policy{}, added(`"plexus.dev/testnic":"1"`), ""},
		{"isolation forbids: nothing", nets + `"other/sriov"`, Policy{NamespaceIsolation: true}, "", ""},
		{"no isolation: other namespace", nets + `"other/sriov"`, Policy{}, added(`"plexus.dev/othernic":"1"`), ""},
		{"malformed annotation", nets + `"sriov,"`, Policy{}, "", "metadata.annotations[k8s.v1.cni.cncf.io/networks]: networks[1]"},
		{"API down: no partial patch", nets + `"sriov,down/x"`, Policy{}, "", "NetworkAttachmentDefinition down/x: connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &Injector{NADs: nads, Policy: tt.policy, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			v := in.Pod(t.Context(), injPod(tt.ann), "tomcat")
			if string(v.Patch) != tt.patch {
				t.Errorf("patch\n got %s\nwant %s", v.Patch, tt.patch)
			}
			if len(v.Problems) > 0 {
				t.Errorf("problems %q: the injector never refuses", v.Problems)
			}
			switch {
			case tt.warn == "" && len(v.Warnings) > 0:
				t.Errorf("warnings %q, want none", v.Warnings)
			case tt.warn != "" && (len(v.Warnings) != 1 || !strings.Contains(v.Warnings[0], tt.warn)):
				t.Errorf("warnings %q, want one containing %q", v.Warnings, tt.warn)
			}
		})
	}
}

func TestInjectorLeavesDRAPodsAlone(t *testing.T) {
	nads := fakeNADs{"tomcat/sriov": "plexus.dev/testnic"}
	in := &Injector{NADs: nads, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	pod := `{"metadata":{"annotations":{"k8s.v1.cni.cncf.io/networks":"sriov"}},
		"spec":{"resourceClaims":[{"name":"nic","resourceClaimTemplateName":"nic"}],"containers":[{"name":"c"}]}}`
	if v := in.Pod(t.Context(), []byte(pod), "tomcat"); v.Patch != nil || len(v.Warnings) > 0 {
		t.Fatalf("a pod with resource claims got patch %s, warnings %q", v.Patch, v.Warnings)
	}
	without := `{"metadata":{"annotations":{"k8s.v1.cni.cncf.io/networks":"sriov"}},"spec":{"containers":[{"name":"c"}]}}`
	if v := in.Pod(t.Context(), []byte(without), "tomcat"); v.Patch == nil {
		t.Fatal("the same pod without claims got no patch")
	}
}
