package plugin

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/plexus-cni/plexus/internal/cnierr"
	"github.com/plexus-cni/plexus/internal/plan"
	"github.com/plexus-cni/plexus/pkg/nad"
)

// plan resolves the configured networks and builds the pod's attachments.
func (p *Plugin) plan(ctx context.Context, r *request, api API, pod *corev1.Pod) ([]plan.Attachment, error) {
	var resolver plan.Resolver
	if api != nil {
		resolver = api
	}
	cluster, defaults, err := configuredNetworks(ctx, r, resolver)
	if err != nil {
		return nil, err
	}
	in := plan.Input{
		IfName:                  r.args.IfName,
		Cluster:                 cluster,
		DefaultNetworks:         defaults,
		RuntimeConfig:           r.conf.RuntimeConfig,
		DefaultNetworkNamespace: r.conf.MultusNamespace,
		NamespaceIsolation:      r.conf.NamespaceIsolation,
		GlobalNamespaces:        r.conf.GlobalNamespaces,
		SystemNamespaces:        r.conf.SystemNamespaces,
	}
	if pod != nil {
		in.Pod = &plan.Pod{Namespace: pod.Namespace, Name: pod.Name, UID: string(pod.UID), Annotations: pod.Annotations}
	}
	if resolver == nil {
		resolver = noAPI{}
	}
	return plan.Build(ctx, in, resolver)
}

// configuredNetworks resolves the cluster network and the networks every
// pod gets: clusterNetwork + defaultNetworks, or (without clusterNetwork)
// delegates[0] + delegates[1:].
func configuredNetworks(ctx context.Context, r *request, res plan.Resolver) (*nad.Delegate, []*nad.Delegate, error) {
	c := r.conf
	var all []*nad.Delegate
	if c.ClusterNetwork != "" {
		d, err := plan.ResolveRef(ctx, "clusterNetwork", c.ClusterNetwork, c.MultusNamespace, c.ConfDir, res)
		if err != nil {
			return nil, nil, err
		}
		all = append(all, d)
	} else {
		for i, raw := range c.Delegates {
			d, err := nad.Parse(raw, "")
			if err != nil {
				return nil, nil, cnierr.Wrap(cnierr.InvalidNetConfig, fmt.Errorf("delegates[%d]: %w", i, err))
			}
			all = append(all, d)
		}
	}
	for i, ref := range c.DefaultNetworks {
		d, err := plan.ResolveRef(ctx, fmt.Sprintf("defaultNetworks[%d]", i), ref, c.MultusNamespace, c.ConfDir, res)
		if err != nil {
			return nil, nil, err
		}
		all = append(all, d)
	}
	return all[0], all[1:], nil
}

// noAPI answers NAD lookups when plexus runs without Kubernetes.
type noAPI struct{}

func (noAPI) NAD(_ context.Context, namespace, name string) (*nad.Delegate, error) {
	return nil, cnierr.New(cnierr.InvalidNetConfig,
		"network %s/%s: no kubeconfig is configured, so NetworkAttachmentDefinitions cannot be read", namespace, name)
}
