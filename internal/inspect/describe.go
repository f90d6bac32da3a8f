package inspect

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
	"github.com/plexus-cni/plexus/pkg/nad"
)

// Network describes one NAD.
type Network struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Config is spec.config as stored ("" means the node's conf dir).
	Config string `json:"config"`
	// Types are the plugin types in chain order; Problem says why the
	// config is unusable.
	Types   []string `json:"types,omitempty"`
	Problem string   `json:"problem,omitempty"`
	// DefinedBy is the NetworkDefinition the NAD was rendered from.
	DefinedBy string       `json:"definedBy,omitempty"`
	Pods      []Attachment `json:"pods"`
	Pools     []Pool       `json:"pools,omitempty"`
}

// Attachment is one pod interface on the network.
type Attachment struct {
	Pod       string   `json:"pod"`
	Interface string   `json:"interface"`
	IPs       []string `json:"ips,omitempty"`
	MAC       string   `json:"mac,omitempty"`
}

// NADResource is the NetworkAttachmentDefinition resource.
func NADResource() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: nad.Group, Version: nad.Version, Resource: nad.Resource}
}

// Describe reads NAD ns/name, the pods attached to it (every namespace)
// and, when it uses plexus-ipam, its pool usage.
func Describe(ctx context.Context, c Cluster, ns, name string) (*Network, error) {
	u, err := c.Dynamic.Resource(NADResource()).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("NetworkAttachmentDefinition %s/%s: %w", ns, name, err)
	}
	n := &Network{Namespace: ns, Name: name, Pods: []Attachment{}, DefinedBy: u.GetLabels()[v1.LabelNetworkDefinition]}
	n.Config, _, _ = unstructured.NestedString(u.Object, "spec", "config")
	var d *nad.Delegate
	if strings.TrimSpace(n.Config) != "" {
		if d, err = nad.Parse([]byte(n.Config), name); err != nil {
			n.Problem = err.Error()
		} else {
			n.Types = d.Types
		}
	}
	pods, err := Pods(ctx, c, "")
	if err != nil {
		return nil, err
	}
	key := ns + "/" + name
	for _, p := range pods {
		for _, e := range p.Interfaces {
			if e.Name == key {
				n.Pods = append(n.Pods, Attachment{Pod: p.Namespace + "/" + p.Name, Interface: e.Interface, IPs: e.IPs, MAC: e.Mac})
			}
		}
	}
	if d != nil {
		if n.Pools, err = pools(ctx, c, d); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// WriteText writes n the way kubectl describe does.
func (n *Network) WriteText(w io.Writer) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Name:         %s\nNamespace:    %s\n", n.Name, n.Namespace)
	if n.DefinedBy != "" {
		fmt.Fprintf(&b, "Defined by:   NetworkDefinition %s\n", n.DefinedBy)
	}
	fmt.Fprintf(&b, "Plugins:      %s\n", dash(strings.Join(n.Types, ", ")))
	if n.Problem != "" {
		fmt.Fprintf(&b, "Problem:      %s\n", n.Problem)
	}
	b.WriteString("Config:\n")
	b.WriteString(indent(prettyJSON(n.Config), "  "))
	fmt.Fprintf(&b, "Pods:         %d attached\n", len(n.Pods))
	if len(n.Pods) > 0 {
		tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "  POD\tINTERFACE\tIPS\tMAC")
		for _, a := range n.Pods {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", a.Pod, a.Interface, dash(strings.Join(a.IPs, ",")), dash(a.MAC))
		}
		tw.Flush()
	}
	for _, p := range n.Pools {
		p.writeText(&b)
	}
	_, err := w.Write(b.Bytes())
	return err
}

func prettyJSON(s string) string {
	if strings.TrimSpace(s) == "" {
		return "(empty: the config comes from the node's CNI configuration directory)\n"
	}
	var out bytes.Buffer
	if err := json.Indent(&out, []byte(s), "", "  "); err != nil {
		return s + "\n"
	}
	return out.String() + "\n"
}

func indent(s, prefix string) string {
	lines := strings.SplitAfter(s, "\n")
	var b strings.Builder
	for _, l := range lines {
		if l != "" {
			b.WriteString(prefix + l)
		}
	}
	return b.String()
}
