package inspect

import (
	"context"
	"slices"
	"strings"

	"github.com/plexus-cni/plexus/pkg/nad"
)

// Graph is networks, pods and the attachments between them. The cluster
// network (network-status entries marked default) is left out: every pod
// has it.
type Graph struct {
	// Scope is the namespace shown, or "all namespaces".
	Scope    string      `json:"scope"`
	Networks []GraphNet  `json:"networks"`
	Pods     []string    `json:"pods"`
	Edges    []GraphEdge `json:"edges"`
}

// GraphNet is one network: a NAD ("ns/name") and its plugin types.
type GraphNet struct {
	Name  string `json:"name"`
	Types string `json:"types,omitempty"`
}

// GraphEdge is one attachment: network index, pod index, label.
type GraphEdge struct {
	Network   int    `json:"network"`
	Pod       int    `json:"pod"`
	Interface string `json:"interface"`
	IPs       string `json:"ips,omitempty"`
}

// Label is the edge's text: interface and addresses.
func (e GraphEdge) Label() string { return strings.TrimSpace(e.Interface + " " + e.IPs) }

// BuildGraph reads the NADs and pods of ns ("" for all).
func BuildGraph(ctx context.Context, c Cluster, ns string) (*Graph, error) {
	pods, err := Pods(ctx, c, PodQuery{Namespace: ns})
	if err != nil {
		return nil, err
	}
	types := map[string]string{}
	err = eachNAD(ctx, c, ns, func(u *nad.NetworkAttachmentDefinition) error {
		types[u.GetNamespace()+"/"+u.GetName()] = nadTypes(u)
		return nil
	})
	if err != nil {
		return nil, err
	}
	scope := ns
	if ns == "" {
		scope = "all namespaces"
	}
	return NewGraph(scope, pods, types), nil
}

func nadTypes(u *nad.NetworkAttachmentDefinition) string {
	cfg := u.Spec.Config
	if strings.TrimSpace(cfg) == "" {
		return "conf dir"
	}
	d, err := nad.Parse([]byte(cfg), u.GetName())
	if err != nil {
		return "invalid config"
	}
	return strings.Join(d.Types, "+")
}

// NewGraph builds the graph of pods and the networks in nads (name ->
// plugin types) plus any other network the pods are attached to. Networks
// and pods are sorted by name; edges by pod, then interface order.
func NewGraph(scope string, pods []Pod, nads map[string]string) *Graph {
	g := &Graph{Scope: scope, Networks: []GraphNet{}, Pods: []string{}, Edges: []GraphEdge{}}
	names := map[string]bool{}
	for n := range nads {
		names[n] = true
	}
	for _, p := range pods {
		for _, e := range p.Interfaces {
			if !e.Default {
				names[e.Name] = true
			}
		}
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	slices.Sort(sorted)
	index := map[string]int{}
	for i, n := range sorted {
		index[n] = i
		g.Networks = append(g.Networks, GraphNet{Name: n, Types: nads[n]})
	}
	for i, p := range pods {
		g.Pods = append(g.Pods, p.Namespace+"/"+p.Name)
		for _, e := range p.Interfaces {
			if !e.Default {
				g.Edges = append(g.Edges, GraphEdge{Network: index[e.Name], Pod: i, Interface: e.Interface, IPs: strings.Join(e.IPs, ",")})
			}
		}
	}
	return g
}
