package main

import (
	"context"

	"github.com/plexus-cni/plexus/internal/controller"
	"github.com/plexus-cni/plexus/internal/controller/ipam"
	"github.com/plexus-cni/plexus/internal/controller/nadcrd"
	"github.com/plexus-cni/plexus/internal/controller/networks"
	"github.com/plexus-cni/plexus/internal/webhook"
)

// components lists the controller's jobs. Each job adds its one line here
// (and its flags to options, if any).
func components(ctx context.Context, d controller.Deps, o *options) ([]controller.Component, error) {
	var comps []controller.Component
	if o.ensureNADCRD {
		comps = append(comps, nadcrd.New(d))
	}
	comps = append(comps, networks.New(d))
	if o.ipam.enabled {
		comps = append(comps, ipam.New(d, o.ipam.reclaimerOptions()))
	}
	if o.webhook.Address != "" {
		comps = append(comps, webhook.NewComponent(d, o.webhook))
	}
	return comps, nil
}
