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

	"github.com/plexus-cni/plexus/internal/controller/metrics"
	"github.com/plexus-cni/plexus/internal/nadclient"
	plexusclient "github.com/plexus-cni/plexus/pkg/client/clientset/versioned"
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
	Config *rest.Config
	Client kubernetes.Interface
	// Dynamic creates the NetworkAttachmentDefinition CRD (nadcrd).
	Dynamic dynamic.Interface
	// Plexus is the typed client of the plexus.dev kinds (the networks
	// reconciler's objects, the IPAM reclaimer's IPAllocation caches);
	// its configuration must speak JSON (CRDs have no protobuf).
	Plexus plexusclient.Interface
	// NADs reads and writes NetworkAttachmentDefinitions (the working
	// group's typed clientset, speaking JSON: see internal/nadclient).
	NADs nadclient.Interface
	Log  *slog.Logger
	// Metrics, when set, records reconciles, frees and admissions.
	Metrics *metrics.Metrics
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
// Run returns only once every component it started has returned and, when
// it led, the lease has been released, so a successor takes over at once
// instead of waiting for the lease to expire.
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
	var el *elector
	if len(leaderOnly) > 0 {
		var err error
		if el, err = newElector(ctx, d, le, cancel); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	start(ctx, d.Log, &wg, shared, cancel)
	if el != nil {
		el.lead(ctx, d.Log, leaderOnly, cancel)
	}
	<-ctx.Done()
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return nil
}

// start runs each component in its own goroutine, counted in wg before the
// goroutine starts; a failure cancels the controller with its cause.
func start(ctx context.Context, log *slog.Logger, wg *sync.WaitGroup, cs []Component, cancel context.CancelCauseFunc) {
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			log.Info("component starting", "component", c.Name())
			if err := c.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				cancel(fmt.Errorf("%s: %w", c.Name(), err))
			}
		}()
	}
}

// elector campaigns for the lease. OnStartedLeading only hands the
// leadership context over (leading has room for the one value a campaign
// produces); the components are started and joined by lead's goroutine.
type elector struct {
	le      *leaderelection.LeaderElector
	leading chan context.Context
}

func newElector(ctx context.Context, d Deps, le LeaderElection, cancel context.CancelCauseFunc) (*elector, error) {
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, le.Namespace, le.Name,
		d.Client.CoreV1(), d.Client.CoordinationV1(), resourcelock.ResourceLockConfig{Identity: le.Identity})
	if err != nil {
		return nil, fmt.Errorf("leader election lock %s/%s: %w", le.Namespace, le.Name, err)
	}
	e := &elector{leading: make(chan context.Context, 1)}
	cfg := leaderelection.LeaderElectionConfig{
		Lock:          lock,
		LeaseDuration: orDefault(le.LeaseDuration, 15*time.Second),
		RenewDeadline: orDefault(le.RenewDeadline, 10*time.Second),
		RetryPeriod:   orDefault(le.RetryPeriod, 2*time.Second),
		// Safe because lead stops every leader-only component before it
		// cancels the campaign, which is what releases the lease.
		ReleaseOnCancel: true,
		Name:            le.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) {
				d.Log.Info("leading", "lease", le.Namespace+"/"+le.Name, "identity", le.Identity)
				e.leading <- lctx
			},
			OnStoppedLeading: func() {
				if ctx.Err() == nil {
					cancel(errors.New("lost the leader lease"))
				}
			},
		},
	}
	if e.le, err = leaderelection.NewLeaderElector(cfg); err != nil {
		return nil, fmt.Errorf("leader election: %w", err)
	}
	return e, nil
}

// lead campaigns until ctx ends, running comps while this replica leads.
// On the way out it stops comps first, then ends the campaign (which
// releases the lease) and waits for it, in that order: the lease is not
// given up while comps still run, and not left held by a replica that is
// gone.
func (e *elector) lead(ctx context.Context, log *slog.Logger, comps []Component, cancel context.CancelCauseFunc) {
	campaign, stopCampaign := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCampaign()
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.le.Run(campaign)
	}()
	var wg sync.WaitGroup
	select {
	case <-ctx.Done():
	case lctx := <-e.leading:
		// Leader-only work ends with the controller or with the leadership.
		runCtx, stop := context.WithCancel(ctx)
		defer stop()
		context.AfterFunc(lctx, stop)
		start(runCtx, log, &wg, comps, cancel)
	}
	<-ctx.Done()
	wg.Wait()
	stopCampaign()
	<-done
	log.Info("left the leader election")
}

func orDefault(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}
