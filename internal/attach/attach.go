// Package attach runs a pod's delegate configurations through libcni: ADD in
// order (the cluster network and the secondary attachments in the stages of
// Stages, several at a time where allowed and none can depend on another) with
// rollback of everything attempted when one fails, the cluster network
// possibly started before the others are known (Start); DEL in reverse order
// past failures; CHECK of every attachment.
package attach

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
)

// Attachment is one delegate invocation target.
type Attachment struct {
	// Name identifies the attachment in errors and status ("ns/name").
	Name           string
	IfName         string
	List           *libcni.NetworkConfigList
	CapabilityArgs map[string]any
}

// Sandbox is what every attachment of one pod shares.
type Sandbox struct {
	ContainerID string
	NetNS       string
	Args        [][2]string
}

// Runner executes attachments.
type Runner struct {
	CNI libcni.CNI
	// Concurrency bounds the independent attachments run at once; 1 (or
	// less) runs them one by one.
	Concurrency int
	// ClusterFirst runs the cluster network, atts[0], alone before any
	// other attachment, even when it is independent of them.
	ClusterFirst bool
	// Observe, when set, is told how long each attachment's ADD took.
	Observe func(a *Attachment, d time.Duration, err error)
}

func (s Sandbox) runtimeConf(a *Attachment) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID:    s.ContainerID,
		NetNS:          s.NetNS,
		IfName:         a.IfName,
		Args:           s.Args,
		CapabilityArgs: a.CapabilityArgs,
	}
}

// Error wraps a delegate failure with the attachment it belongs to, keeping
// the delegate's CNI error (and so its code) reachable with errors.As.
type Error struct {
	Op         string
	Attachment string
	IfName     string
	Err        error
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s %s (%s): %v", e.Op, e.IfName, e.Attachment, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Add attaches atts in order and returns their results, results[i] for
// atts[i] whatever the order they ran in. They run in the stages of Stages,
// one stage after another, the attachments of a stage Concurrency at a time;
// the cluster network, atts[0], shares the first stage when it and the
// attachments after it are independent (ClusterFirst runs it alone). If
// any fails, no new one starts, and every attachment attempted so far is
// deleted in reverse order and the first failure is returned (rollback
// failures are joined to it).
func (r *Runner) Add(ctx context.Context, sb Sandbox, atts []Attachment) ([]types.Result, error) {
	return r.AddStarted(ctx, sb, atts, nil)
}

// AddStarted is Add for attachments whose first one, the cluster network,
// began earlier with Start (first.Is(&atts[0]) holds; nil: none did): it
// takes atts[0]'s place in the first stage, so the stages, the rollback and
// the results are Add's.
func (r *Runner) AddStarted(ctx context.Context, sb Sandbox, atts []Attachment, first *Started) ([]types.Result, error) {
	results := make([]types.Result, len(atts))
	attempted := make([]bool, len(atts))
	err := r.addAll(ctx, sb, atts, first, results, attempted)
	if err == nil {
		return results, nil
	}
	var undo []Attachment
	for i := range atts {
		if attempted[i] {
			undo = append(undo, atts[i])
		}
	}
	return nil, r.Rollback(ctx, sb, undo, err)
}

// RollbackError reports that undoing a failed ADD failed too: the runtime's
// DEL has work left.
type RollbackError struct{ Err error }

func (e *RollbackError) Error() string { return "rollback: " + e.Err.Error() }
func (e *RollbackError) Unwrap() error { return e.Err }

// Rollback deletes atts (in reverse) after cause made an ADD fail, and
// returns cause, joined with a *RollbackError when the deletion failed.
func (r *Runner) Rollback(ctx context.Context, sb Sandbox, atts []Attachment, cause error) error {
	if err := r.Del(context.WithoutCancel(ctx), sb, atts); err != nil {
		return errors.Join(cause, &RollbackError{Err: err})
	}
	return cause
}

func (r *Runner) addAll(ctx context.Context, sb Sandbox, atts []Attachment, first *Started, results []types.Result, attempted []bool) error {
	for _, stage := range schedule(atts, r.ClusterFirst) {
		if err := r.addStage(ctx, sb, atts, stage, first, results, attempted); err != nil {
			return err
		}
	}
	return nil
}

// schedule is Stages, with the cluster network, atts[0], alone in the first
// stage when clusterFirst is set.
func schedule(atts []Attachment, clusterFirst bool) [][]int {
	stages := Stages(atts)
	if clusterFirst && len(stages) > 0 && len(stages[0]) > 1 {
		stages = append([][]int{stages[0][:1], stages[0][1:]}, stages[1:]...)
	}
	return stages
}

// addStage attaches atts[stage...], Concurrency at a time; atts[0] is
// first's ADD when first is set.
func (r *Runner) addStage(ctx context.Context, sb Sandbox, atts []Attachment, stage []int, first *Started, results []types.Result, attempted []bool) error {
	// A failure stops new attachments from starting; running ones finish
	// (killing a delegate mid-ADD would leave more to undo, not less).
	limit := max(r.Concurrency, 1)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		slots    = make(chan struct{}, limit)
	)
	for _, i := range stage {
		slots <- struct{}{}
		mu.Lock()
		failed := firstErr != nil
		if !failed {
			attempted[i] = true
		}
		mu.Unlock()
		if failed {
			<-slots
			break
		}
		wg.Add(1)
		go func(i int) {
			defer func() { <-slots; wg.Done() }()
			var res types.Result
			var err error
			if i == 0 && first != nil {
				res, err = first.Wait()
			} else {
				res, err = r.add(ctx, sb, &atts[i])
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			results[i] = res
		}(i)
	}
	wg.Wait()
	return firstErr
}

func (r *Runner) add(ctx context.Context, sb Sandbox, a *Attachment) (types.Result, error) {
	start := time.Now()
	res, err := r.CNI.AddNetworkList(ctx, a.List, sb.runtimeConf(a))
	if r.Observe != nil {
		r.Observe(a, time.Since(start), err)
	}
	if err != nil {
		return nil, &Error{Op: "add", Attachment: a.Name, IfName: a.IfName, Err: err}
	}
	return res, nil
}

// Started is the ADD of one attachment begun before the pod's other
// attachments are known (Runner.Start): plexus starts the cluster network
// while it reads the pod and its networks, when the cluster network's
// configuration does not depend on them.
type Started struct {
	att  Attachment
	done chan struct{}
	res  types.Result
	err  error
}

// Start begins the ADD of a in the background and returns at once. The
// caller ends it with AddStarted (a is then atts[0]) or Abandon.
func (r *Runner) Start(ctx context.Context, sb Sandbox, a Attachment) *Started {
	s := &Started{att: a, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.res, s.err = r.add(ctx, sb, &s.att)
	}()
	return s
}

// Wait waits for the ADD to end and returns its result.
func (s *Started) Wait() (types.Result, error) {
	<-s.done
	return s.res, s.err
}

// Is reports whether s is the ADD that a asks for: the same interface, the
// same configuration list and the same capability arguments.
func (s *Started) Is(a *Attachment) bool {
	return s.att.IfName == a.IfName && a.List != nil && s.att.List != nil &&
		bytes.Equal(s.att.List.Bytes, a.List.Bytes) && reflect.DeepEqual(s.att.CapabilityArgs, a.CapabilityArgs)
}

// Abandon waits for s to end and deletes what it attached, because the ADD
// it was started for failed (cause) or attaches something else there
// (cause nil). Like Rollback, it returns cause, joined with a
// *RollbackError when the deletion failed.
func (r *Runner) Abandon(ctx context.Context, sb Sandbox, s *Started, cause error) error {
	_, _ = s.Wait() // its failure is undone all the same; cause is what the ADD reports
	return r.Rollback(ctx, sb, []Attachment{s.att}, cause)
}

// Del deletes atts in reverse order, going on past failures, and returns
// every failure joined. Deleting what is already gone succeeds (delegates
// are idempotent on DEL per the CNI spec).
func (r *Runner) Del(ctx context.Context, sb Sandbox, atts []Attachment) error {
	var errs []error
	for i := len(atts) - 1; i >= 0; i-- {
		a := &atts[i]
		if err := r.CNI.DelNetworkList(ctx, a.List, sb.runtimeConf(a)); err != nil {
			errs = append(errs, &Error{Op: "delete", Attachment: a.Name, IfName: a.IfName, Err: err})
		}
	}
	return errors.Join(errs...)
}

// Check runs CNI CHECK for every attachment whose configuration supports it
// (cniVersion 0.4.0 or later and not disableCheck) and returns every failure.
func (r *Runner) Check(ctx context.Context, sb Sandbox, atts []Attachment) error {
	var errs []error
	for i := range atts {
		a := &atts[i]
		if a.List.DisableCheck || !supportsCheck(a.List.CNIVersion) {
			continue
		}
		if err := r.CNI.CheckNetworkList(ctx, a.List, sb.runtimeConf(a)); err != nil {
			errs = append(errs, &Error{Op: "check", Attachment: a.Name, IfName: a.IfName, Err: err})
		}
	}
	return errors.Join(errs...)
}

func supportsCheck(v string) bool {
	ok, err := version.GreaterThanOrEqualTo(v, "0.4.0")
	return err == nil && ok
}
