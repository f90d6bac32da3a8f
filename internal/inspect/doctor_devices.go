package inspect

import (
	"context"
	"slices"
	"strings"
)

// deviceChecks asks the kubelet's pod-resources socket, which plexus asks
// for the devices of pods on networks with a resourceName, whether it
// answers and how many devices of each such resource the node offers.
// Without such networks the kubelet is not asked.
func deviceChecks(ctx context.Context, configs []NetworkConfig, socket string, allocatable func(context.Context, string) (map[string]int, error), add addFunc) {
	users := map[string][]string{} // resource → networks
	for _, c := range configs {
		if c.ResourceName != "" {
			users[c.ResourceName] = append(users[c.ResourceName], c.Source)
		}
	}
	if len(users) == 0 {
		add(Skip, "kubelet", socket, "no NetworkAttachmentDefinition names a resource (k8s.v1.cni.cncf.io/resourceName)")
		return
	}
	if allocatable == nil {
		add(Skip, "kubelet", socket, "not checked")
		return
	}
	offered, err := allocatable(ctx, socket)
	if err != nil {
		add(Fail, "kubelet", socket, "kubelet does not answer (%v): pods on the %d networks with a resourceName cannot get their devices", err, len(users))
		return
	}
	add(OK, "kubelet", socket, "kubelet answers")
	resources := make([]string, 0, len(users))
	for r := range users {
		resources = append(resources, r)
	}
	slices.Sort(resources)
	for _, r := range resources {
		nets := strings.Join(users[r], ", ")
		if n := offered[r]; n > 0 {
			add(OK, "devices", r, "%d allocatable on this node (networks %s)", n, nets)
		} else {
			add(Fail, "devices", r, "no device of it is allocatable on this node: pods here on networks %s cannot start (is its device plugin or DRA driver running?)", nets)
		}
	}
}
