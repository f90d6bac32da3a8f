package inspect

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-cni/plexus/internal/netstatus"
	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
	"github.com/plexus-cni/plexus/pkg/nad"
	"github.com/plexus-cni/plexus/pkg/netselect"
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

// DescribeOptions say which namespaces' pods can use a network.
type DescribeOptions struct {
	// NamespaceIsolation and GlobalNamespaces are the plugin's settings of
	// those names: with isolation on, only pods of the network's own
	// namespace can use a network outside the global namespaces.
	NamespaceIsolation bool
	GlobalNamespaces   []string
}

// PodScope is the namespace whose pods can use a network of namespace ns
// ("": every namespace).
func (o DescribeOptions) PodScope(ns string) string {
	if o.NamespaceIsolation && !slices.Contains(o.GlobalNamespaces, ns) {
		return ns
	}
	return ""
}

// Describe reads NAD ns/name, the pods attached to it and, when it uses
// plexus-ipam, its pool usage.
//
// No index maps a network to its pods: a pod in any namespace may select
// any NAD unless namespace isolation says otherwise. So the pods come from
// one paged list of pod metadata (names and annotations, not specs and
// statuses) in the namespaces that can use the network: the network's own
// namespace under isolation, else every namespace; each pod is read once.
func Describe(ctx context.Context, c Cluster, ns, name string, o DescribeOptions) (*Network, error) {
	u, err := c.NADs.K8sCniCncfIoV1().NetworkAttachmentDefinitions(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("NetworkAttachmentDefinition %s/%s: %w", ns, name, err)
	}
	n := &Network{Namespace: ns, Name: name, Pods: []Attachment{}, DefinedBy: u.Labels[v1.LabelNetworkDefinition]}
	n.Config = u.Spec.Config
	var d *nad.Delegate
	if strings.TrimSpace(n.Config) != "" {
		if d, err = nad.Parse([]byte(n.Config), name); err != nil {
			n.Problem = err.Error()
		} else {
			n.Types = d.Types
		}
	}
	if n.Pods, err = attachedPods(ctx, c, o.PodScope(ns), ns+"/"+name); err != nil {
		return nil, err
	}
	if d != nil {
		if n.Pools, err = pools(ctx, c, d); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// attachedPods returns the interfaces that the network-status of the pods
// of ns ("" for all) shows on network key, by pod and interface order.
func attachedPods(ctx context.Context, c Cluster, ns, key string) ([]Attachment, error) {
	out := []Attachment{}
	err := eachPodMeta(ctx, c, ns, func(m *metav1.PartialObjectMetadata) error {
		status, ok := m.Annotations[netselect.NetworkStatusAnnotation]
		if !ok {
			return nil
		}
		var entries []netstatus.Entry
		if json.Unmarshal([]byte(status), &entries) != nil {
			return nil // get pods reports it
		}
		for _, e := range entries {
			if e.Name == key {
				out = append(out, Attachment{Pod: m.Namespace + "/" + m.Name, Interface: e.Interface, IPs: e.IPs, MAC: e.Mac})
			}
		}
		return nil
	})
	slices.SortStableFunc(out, func(a, b Attachment) int { return strings.Compare(a.Pod, b.Pod) })
	return out, err
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
