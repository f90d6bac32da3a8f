// Package inspect is the logic behind plexusctl's cluster verbs: the
// interfaces of pods from their network-status (get pods), a network's
// config, pods and address pool (describe network), a picture of networks
// and pods (graph), and a node's CNI set-up (doctor). Reading goes through
// Cluster, and every list is paged; output is text, tables, JSON/YAML, SVG
// or Mermaid, always in a deterministic order.
package inspect

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/plexus-cni/plexus/internal/nadclient"
	"github.com/plexus-cni/plexus/internal/netstatus"
	"github.com/plexus-cni/plexus/pkg/netselect"
)

// Cluster holds the clients the verbs read with and the page size of
// their lists.
type Cluster struct {
	Config   *rest.Config
	Client   kubernetes.Interface
	Dynamic  dynamic.Interface
	NADs     nadclient.Interface
	Metadata metadata.Interface
	// ChunkSize is the Limit of every list request; 0 lists in one
	// request.
	ChunkSize int64
}

// Pod is one pod's network attachments, from its network-status.
type Pod struct {
	Namespace  string            `json:"namespace"`
	Name       string            `json:"name"`
	Node       string            `json:"node,omitempty"`
	Interfaces []netstatus.Entry `json:"interfaces"`
	// Requested is the networks annotation as written.
	Requested string `json:"requested,omitempty"`
	// Missing are the requested networks ("ns/name", with "@interface"
	// when one was asked for) that network-status does not show.
	Missing []string `json:"missing,omitempty"`
	// RequestError says why the networks annotation does not parse.
	RequestError string `json:"requestError,omitempty"`
	// Problem says why the network-status could not be read.
	Problem string `json:"problem,omitempty"`
	// LastFailure is the pod's newest Warning event (PodQuery.Events).
	LastFailure *Event `json:"lastFailure,omitempty"`

	uid types.UID
	// requested[i] tells whether Interfaces[i] answers a selection of the
	// networks annotation (nil: not worked out).
	requested []bool
}

// PodQuery selects the pods Pods reads.
type PodQuery struct {
	// Namespace of the pods; "" is every namespace.
	Namespace string
	// Names reads these pods (in Namespace) instead of listing.
	Names []string
	// LabelSelector and FieldSelector narrow the list, as kubectl's -l and
	// --field-selector.
	LabelSelector, FieldSelector string
	// Events also reads each pod's newest Warning event.
	Events bool
}

// Pods reads the pods q selects, in namespace/name order.
func Pods(ctx context.Context, c Cluster, q PodQuery) ([]Pod, error) {
	out := []Pod{}
	if len(q.Names) > 0 {
		for _, name := range q.Names {
			p, err := c.Client.CoreV1().Pods(q.Namespace).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			out = append(out, podOf(p))
		}
	} else {
		opts := metav1.ListOptions{LabelSelector: q.LabelSelector, FieldSelector: q.FieldSelector}
		err := eachPod(ctx, c, q.Namespace, opts, func(p *corev1.Pod) error {
			out = append(out, podOf(p))
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, func(a, b Pod) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	if q.Events && len(out) > 0 {
		if err := lastFailures(ctx, c, q, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func podOf(p *corev1.Pod) Pod {
	out := Pod{Namespace: p.Namespace, Name: p.Name, Node: p.Spec.NodeName, Interfaces: []netstatus.Entry{},
		Requested: p.Annotations[netselect.NetworksAnnotation], uid: p.UID}
	if status, ok := p.Annotations[netselect.NetworkStatusAnnotation]; ok {
		if err := json.Unmarshal([]byte(status), &out.Interfaces); err != nil {
			out.Problem = fmt.Sprintf("annotation %s: %v", netselect.NetworkStatusAnnotation, err)
		}
	}
	out.matchRequested()
	return out
}

// matchRequested pairs the selections of the networks annotation with the
// network-status entries: explicit interface names first, then the others
// in annotation order, each taking the first unpaired entry of its network.
func (p *Pod) matchRequested() {
	p.requested = make([]bool, len(p.Interfaces))
	sels, err := netselect.ParseNetworks(p.Requested, p.Namespace)
	if err != nil {
		p.RequestError = fmt.Sprintf("annotation %s: %v", netselect.NetworksAnnotation, err)
		return
	}
	found := make([]bool, len(sels))
	for _, explicit := range []bool{true, false} {
		for i, s := range sels {
			if (s.InterfaceName != "") != explicit {
				continue
			}
			for j, e := range p.Interfaces {
				if !p.requested[j] && !e.Default && e.Name == s.Namespace+"/"+s.Name && (s.InterfaceName == "" || s.InterfaceName == e.Interface) {
					p.requested[j], found[i] = true, true
					break
				}
			}
		}
	}
	for i, s := range sels {
		if !found[i] {
			ref := s.Namespace + "/" + s.Name
			if s.InterfaceName != "" {
				ref += "@" + s.InterfaceName
			}
			p.Missing = append(p.Missing, ref)
		}
	}
}
