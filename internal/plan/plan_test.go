package plan

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/plexus-cni/plexus/internal/cnierr"
	"github.com/plexus-cni/plexus/pkg/nad"
	"github.com/plexus-cni/plexus/pkg/netselect"
)

// fakeResolver serves delegates from a map keyed "ns/name".
type fakeResolver map[string]*nad.Delegate

func (f fakeResolver) NAD(_ context.Context, ns, name string) (*nad.Delegate, error) {
	if d, ok := f[ns+"/"+name]; ok {
		return d, nil
	}
	return nil, fmt.Errorf("NetworkAttachmentDefinition %s/%s: %w", ns, name, nad.ErrNotFound)
}

func delegate(name string, caps ...string) *nad.Delegate {
	c := map[string]bool{}
	for _, k := range caps {
		c[k] = true
	}
	return &nad.Delegate{
		Name: name, CNIVersion: "0.3.1", Types: []string{"macvlan"}, Capabilities: c, Source: name,
		Conflist: []byte(`{"cniVersion":"0.3.1","name":"` + name + `","plugins":[{"type":"macvlan"}]}`),
	}
}

var resolver = fakeResolver{
	"default/macvlan-conf":           delegate("macvlan-conf"),
	"default/static":                 delegate("static", "ips", "mac"),
	"other/remote":                   delegate("remote"),
	"kube-system/macvlan-standalone": delegate("macvlan-standalone"),
	"default/with-ports":             delegate("with-ports", "portMappings", "bandwidth"),
	"shared/global-net":              delegate("global-net"),
}

func input(annotations map[string]string) Input {
	return Input{
		Pod:                     &Pod{Namespace: "default", Name: "samplepod", UID: "u1", Annotations: annotations},
		IfName:                  "eth0",
		Cluster:                 delegate("cbr0"),
		DefaultNetworkNamespace: "kube-system",
		GlobalNamespaces:        []string{"default"},
		SystemNamespaces:        []string{"kube-system"},
	}
}

// summary renders a plan as "statusname@ifname" items for compact tables.
func summary(atts []Attachment) string {
	var b []string
	for _, a := range atts {
		s := a.StatusName + "@" + a.IfName
		if a.Default {
			s += "*"
		}
		b = append(b, s)
	}
	return strings.Join(b, " ")
}

func TestBuild(t *testing.T) {
	nets := netselect.NetworksAnnotation
	tests := []struct {
		name   string
		ann    map[string]string
		modify func(*Input)
		want   string
	}{
		{"no annotation", nil, nil, "cbr0@eth0*"},
		{"S1", map[string]string{nets: "macvlan-conf"}, nil, "cbr0@eth0* default/macvlan-conf@net1"},
		{"S2 same network twice", map[string]string{nets: "macvlan-conf,macvlan-conf"}, nil,
			"cbr0@eth0* default/macvlan-conf@net1 default/macvlan-conf@net2"},
		{"explicit names win", map[string]string{nets: `[{"name":"macvlan-conf"},{"name":"macvlan-conf","interface":"net1"}]`}, nil,
			"cbr0@eth0* default/macvlan-conf@net2 default/macvlan-conf@net1"},
		{"comma ifname", map[string]string{nets: "other/remote@data0,macvlan-conf"}, nil,
			"cbr0@eth0* other/remote@data0 default/macvlan-conf@net2"},
		{"S5 default network replaced", map[string]string{
			netselect.DefaultNetworkAnnotation: "kube-system/macvlan-standalone",
			nets:                               "kube-system/macvlan-standalone"}, nil,
			"kube-system/macvlan-standalone@eth0* kube-system/macvlan-standalone@net1"},
		{"default network in multusNamespace by default", map[string]string{
			netselect.DefaultNetworkAnnotation: "macvlan-standalone"}, nil,
			"kube-system/macvlan-standalone@eth0*"},
		{"defaultNetworks come before the annotation", map[string]string{nets: "macvlan-conf"},
			func(in *Input) { in.DefaultNetworks = []*nad.Delegate{delegate("sidecar")} },
			"cbr0@eth0* sidecar@net1 default/macvlan-conf@net2"},
		{"no defaultNetworks in system namespaces", nil,
			func(in *Input) {
				in.Pod.Namespace = "kube-system"
				in.DefaultNetworks = []*nad.Delegate{delegate("sidecar")}
			},
			"cbr0@eth0*"},
		{"isolation allows the global namespaces", map[string]string{nets: "shared/global-net"},
			func(in *Input) { in.NamespaceIsolation = true; in.GlobalNamespaces = []string{"shared"} },
			"cbr0@eth0* shared/global-net@net1"},
		{"cross namespace without isolation", map[string]string{nets: "other/remote"}, nil,
			"cbr0@eth0* other/remote@net1"},
		{"no pod", nil, func(in *Input) { in.Pod = nil }, "cbr0@eth0*"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := input(tc.ann)
			if tc.modify != nil {
				tc.modify(&in)
			}
			atts, err := Build(context.Background(), in, resolver)
			if err != nil {
				t.Fatal(err)
			}
			if got := summary(atts); got != tc.want {
				t.Fatalf("plan = %s\nwant   %s", got, tc.want)
			}
		})
	}
}

func TestBuildErrors(t *testing.T) {
	nets := netselect.NetworksAnnotation
	tests := []struct {
		name   string
		ann    map[string]string
		modify func(*Input)
		want   string
		code   uint
	}{
		{"isolation", map[string]string{nets: "other/remote"}, func(in *Input) { in.NamespaceIsolation = true },
			"network other/remote is in another namespace", cnierr.InvalidNetConfig},
		{"missing NAD", map[string]string{nets: "nope"}, nil, "networks[0]: network default/nope", cnierr.NetworkNotFound},
		{"duplicate explicit interface", map[string]string{nets: `[{"name":"macvlan-conf","interface":"x1"},{"name":"static","interface":"x1"}]`},
			nil, `"x1"`, cnierr.InvalidNetConfig},
		{"eth0 taken by the cluster network", map[string]string{nets: "macvlan-conf@eth0"}, nil,
			`interface name "eth0" is requested by both cbr0`, cnierr.InvalidNetConfig},
		{"capability missing", map[string]string{nets: `[{"name":"macvlan-conf","ips":["192.0.2.9/24"]}]`}, nil,
			`networks[0].ips: network default/macvlan-conf does not support it`, cnierr.InvalidNetConfig},
		{"bandwidth without capability", map[string]string{nets: `[{"name":"static","bandwidth":{"ingressRate":1000,"ingressBurst":100}}]`}, nil,
			`"bandwidth"`, cnierr.InvalidNetConfig},
		{"bad annotation", map[string]string{nets: "macvlan-conf,"}, nil,
			"pod annotation k8s.v1.cni.cncf.io/networks", cnierr.InvalidNetConfig},
		{"bad default network", map[string]string{netselect.DefaultNetworkAnnotation: "a,b"}, nil,
			"v1.multus-cni.io/default-network", cnierr.InvalidNetConfig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := input(tc.ann)
			if tc.modify != nil {
				tc.modify(&in)
			}
			_, err := Build(context.Background(), in, resolver)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if got := cnierr.Code(err); got != tc.code {
				t.Fatalf("code = %d, want %d", got, tc.code)
			}
		})
	}
}

func TestCapabilityArgsReachRuntimeConfig(t *testing.T) {
	in := input(map[string]string{netselect.NetworksAnnotation: `[{"name":"static","ips":["192.0.2.9/24"],"mac":"02:00:00:00:00:09"},` +
		`{"name":"with-ports","portMappings":[{"hostPort":8080,"containerPort":80}]}]`})
	in.RuntimeConfig = map[string]any{"portMappings": "cluster-only"}
	atts, err := Build(context.Background(), in, resolver)
	if err != nil {
		t.Fatal(err)
	}
	if atts[0].CapabilityArgs["portMappings"] != "cluster-only" {
		t.Errorf("cluster network lost the runtime's runtimeConfig: %v", atts[0].CapabilityArgs)
	}
	st := atts[1].CapabilityArgs
	if fmt.Sprint(st["ips"]) != "[192.0.2.9/24]" || st["mac"] != "02:00:00:00:00:09" || len(st) != 2 {
		t.Errorf("static runtimeConfig = %v", st)
	}
	if pm := atts[2].CapabilityArgs["portMappings"]; pm == nil || atts[2].CapabilityArgs["bandwidth"] != nil {
		t.Errorf("with-ports runtimeConfig = %v", atts[2].CapabilityArgs)
	}
}
