package main

import (
	"context"

	"github.com/plexus-cni/plexus/internal/controller"
)

// components lists the controller's jobs. Each job adds its one line here
// (and its flags to options, if any).
func components(ctx context.Context, d controller.Deps, o *options) ([]controller.Component, error) {
	var comps []controller.Component
	return comps, nil
}
