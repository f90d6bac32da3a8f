// Package inspect is the logic behind plexusctl's cluster verbs: the
// interfaces of pods from their network-status (get pods), a network's
// config, pods and address pool (describe network), a picture of networks
// and pods (graph), and a node's CNI set-up (doctor). Reading goes through
// Cluster; output is text, tables, JSON/YAML, SVG or Mermaid, always in a
// deterministic order.
package inspect

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/plexus-cni/plexus/internal/netstatus"
	"github.com/plexus-cni/plexus/pkg/netselect"
)

// Cluster holds the clients the verbs read with.
type Cluster struct {
	Config  *rest.Config
	Client  kubernetes.Interface
	Dynamic dynamic.Interface
}

// Pod is one pod's network attachments, from its network-status.
type Pod struct {
	Namespace  string            `json:"namespace"`
	Name       string            `json:"name"`
	Node       string            `json:"node,omitempty"`
	Interfaces []netstatus.Entry `json:"interfaces"`
	// Requested is the networks annotation as written.
	Requested string `json:"requested,omitempty"`
	// Problem says why the network-status could not be read.
	Problem string `json:"problem,omitempty"`
}

// Pods lists the pods of namespace ns ("" for all) in name order.
func Pods(ctx context.Context, c Cluster, ns string) ([]Pod, error) {
	list, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing pods in namespace %q: %w", ns, err)
	}
	out := make([]Pod, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, podOf(&list.Items[i]))
	}
	slices.SortFunc(out, func(a, b Pod) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	return out, nil
}

func podOf(p *corev1.Pod) Pod {
	out := Pod{Namespace: p.Namespace, Name: p.Name, Node: p.Spec.NodeName, Interfaces: []netstatus.Entry{},
		Requested: p.Annotations[netselect.NetworksAnnotation]}
	status, ok := p.Annotations[netselect.NetworkStatusAnnotation]
	if !ok {
		return out
	}
	if err := json.Unmarshal([]byte(status), &out.Interfaces); err != nil {
		out.Problem = fmt.Sprintf("annotation %s: %v", netselect.NetworkStatusAnnotation, err)
	}
	return out
}

// WritePodsTable writes one row per interface (a pod without any gets one
// row of dashes); allNamespaces adds the NAMESPACE column.
func WritePodsTable(w io.Writer, pods []Pod, allNamespaces bool) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	head := "POD\tINTERFACE\tNETWORK\tIPS\tMAC\tDEFAULT"
	if allNamespaces {
		head = "NAMESPACE\t" + head
	}
	fmt.Fprintln(tw, head)
	for _, p := range pods {
		prefix := p.Name
		if allNamespaces {
			prefix = p.Namespace + "\t" + p.Name
		}
		if p.Problem != "" {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t# %s\n", prefix, p.Problem)
			continue
		}
		if len(p.Interfaces) == 0 {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\n", prefix)
		}
		for _, e := range p.Interfaces {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", prefix, dash(e.Interface), e.Name, dash(strings.Join(e.IPs, ",")),
				dash(e.Mac), yesNo(e.Default))
		}
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
