// Package controller runs plexus-controller's jobs: each is a Component;
// the ones that must not run twice (reconcilers that write) run only while
// this replica holds the leader lease, the others (the admission webhook)
// run on every replica.
package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Component is one job of the controller.
type Component interface {
	// Name identifies the component in logs.
	Name() string
	// LeaderOnly reports whether the component may run on the leader only.
	LeaderOnly() bool
	// Run works until ctx ends; an error ends the controller.
	Run(ctx context.Context) error
}

// Deps are what components are built from.
type Deps struct {
	Config  *rest.Config
	Client  kubernetes.Interface
	Dynamic dynamic.Interface
	Log     *slog.Logger
}

// LeaderElection configures the lease (Kubernetes Lease object).
type LeaderElection struct {
	Namespace, Name, Identity string
	LeaseDuration             time.Duration // default 15s
	RenewDeadline             time.Duration // default 10s
	RetryPeriod               time.Duration // default 2s
}

// Run runs every component until ctx ends or one fails. Leader-only
// components start when this replica becomes leader and stop when it loses
// the lease (the controller then exits, and its restart campaigns again).
func Run(ctx context.Context, d Deps, le LeaderElection, components []Component) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var shared, leaderOnly []Component
	for _, c := range components {
		if c.LeaderOnly() {
			leaderOnly = append(leaderOnly, c)
		} else {
			shared = append(shared, c)
		}
	}
	var wg sync.WaitGroup
	start := func(ctx context.Context, cs []Component) {
		for _, c := range cs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.Log.Info("component starting", "component", c.Name())
				if err := c.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
					cancel(fmt.Errorf("%s: %w", c.Name(), err))
				}
			}()
		}
	}
	start(ctx, shared)
	if len(leaderOnly) > 0 {
		if err := elect(ctx, d, le, func(ctx context.Context) { start(ctx, leaderOnly) }, cancel); err != nil {
			return err
		}
	}
	<-ctx.Done()
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return nil
}

func elect(ctx context.Context, d Deps, le LeaderElection, lead func(context.Context), cancel context.CancelCauseFunc) error {
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, le.Namespace, le.Name,
		d.Client.CoreV1(), d.Client.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: le.Identity})
	if err != nil {
		return fmt.Errorf("leader election lock %s/%s: %w", le.Namespace, le.Name, err)
	}
	cfg := leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   orDefault(le.LeaseDuration, 15*time.Second),
		RenewDeadline:   orDefault(le.RenewDeadline, 10*time.Second),
		RetryPeriod:     orDefault(le.RetryPeriod, 2*time.Second),
		ReleaseOnCancel: true,
		Name:            le.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				d.Log.Info("leading", "lease", le.Namespace+"/"+le.Name, "identity", le.Identity)
				lead(ctx)
			},
			OnStoppedLeading: func() {
				if ctx.Err() == nil {
					cancel(errors.New("lost the leader lease"))
				}
			},
		},
	}
	elector, err := leaderelection.NewLeaderElector(cfg)
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	go elector.Run(ctx)
	return nil
}

func orDefault(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}
