package plugin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	corev1 "k8s.io/api/core/v1"

	"github.com/plexus-cni/plexus/internal/attach"
	"github.com/plexus-cni/plexus/internal/cache"
	"github.com/plexus-cni/plexus/internal/cnierr"
	"github.com/plexus-cni/plexus/internal/kube"
	"github.com/plexus-cni/plexus/internal/netstatus"
	"github.com/plexus-cni/plexus/internal/plan"
	"github.com/plexus-cni/plexus/internal/podnet"
)

// add implements CNI ADD.
func (p *Plugin) add(ctx context.Context, r *request) (types.Result, error) {
	start := time.Now()
	if err := waitReadiness(ctx, r.conf.ReadinessIndicatorFile, r.conf.ReadinessTimeoutSeconds); err != nil {
		return nil, err
	}
	store := r.store()
	first, err := p.startCluster(ctx, r, store)
	if err != nil {
		return nil, err
	}
	marked := first != nil
	defer func() {
		// The mark outlives this ADD only if its runner dies: DEL then
		// stops what the delegates left running (see cache.Lock).
		if marked {
			if err := store.Added(r.args.ContainerID); err != nil {
				r.log.Errorf("%v", err)
			}
		}
	}()
	pl, err := p.planAdd(ctx, r, start)
	if err == nil && first != nil && !first.started.Is(&pl.run[0]) {
		// The pod's default-network annotation, or a configuration that
		// changed since it started.
		r.log.Infof("the plan's cluster network (%s) is not the one started (%s): undoing that one", pl.run[0].Name, first.rec.Attachments[0].StatusName)
		err, first = first.abandon(ctx, r, store, nil), nil
	}
	if err != nil {
		if first != nil {
			err = first.abandon(ctx, r, store, err)
		}
		return nil, err
	}
	// Record before running anything more: a crash mid-ADD is still
	// cleaned up. The early cluster network's record is the whole one when
	// the pod asks for no other network.
	recordStart := time.Now()
	if first == nil || !cache.Same(first.rec, pl.rec) {
		if err := store.Save(pl.rec); err != nil {
			return nil, failRecord(ctx, r, store, first, pl.rec, cnierr.Wrap(cnierr.IOFailure, err))
		}
	}
	if !marked {
		if err := store.MarkAdding(r.args.ContainerID); err != nil {
			return nil, failRecord(ctx, r, store, first, pl.rec, cnierr.Wrap(cnierr.IOFailure, err))
		}
		marked = true
	}
	if err := writeDeviceInfo(r.conf.DeviceInfoDir, pl.atts); err != nil {
		return nil, failRecord(ctx, r, store, first, pl.rec, err)
	}
	r.phase(PhaseRecord, recordStart)
	var started *attach.Started
	if first != nil {
		started = first.started
	}
	results, err := r.runner().AddStarted(ctx, r.sandbox(), pl.run, started)
	if err != nil {
		forgetAfterRollback(r, store, pl.rec, err)
		return nil, err
	}
	r.log.Debugf("delegates done after %v", time.Since(start))
	finishStart := time.Now()
	if err := p.finish(ctx, r, pl.api, pl.pod, pl.atts, results); err != nil {
		err = r.runner().Rollback(ctx, r.sandbox(), pl.run, err)
		forgetAfterRollback(r, store, pl.rec, err)
		return nil, err
	}
	r.phase(PhaseStatus, finishStart)
	r.log.Infof("ADD done: %d attachments in %v", len(pl.atts), time.Since(start).Round(time.Millisecond))
	return results[0], nil
}

// addPlan is what an ADD attaches: the pod (nil outside Kubernetes), its
// attachments, their delegate invocations and the record.
type addPlan struct {
	api  API
	pod  *corev1.Pod
	atts []plan.Attachment
	run  []attach.Attachment
	rec  *cache.Record
}

// planAdd reads the pod and its networks and plans the ADD.
func (p *Plugin) planAdd(ctx context.Context, r *request, start time.Time) (*addPlan, error) {
	api, pod, err := p.lookupPod(ctx, r)
	if err != nil {
		return nil, err
	}
	r.log.Debugf("pod read after %v", time.Since(start))
	atts, err := p.plan(ctx, r, api, pod)
	if err != nil {
		return nil, err
	}
	if err := p.assignDevices(ctx, r, api, pod, atts); err != nil {
		return nil, err
	}
	r.log.Debugf("%d attachments planned after %v", len(atts), time.Since(start))
	run, rec, err := prepare(r, atts)
	if err != nil {
		return nil, err
	}
	r.phase(PhasePlan, start)
	return &addPlan{api: api, pod: pod, atts: atts, run: run, rec: rec}, nil
}

// failRecord fails an ADD whose record or device-info files could not be
// written (err): an early cluster network is undone, and what was written
// goes.
func failRecord(ctx context.Context, r *request, store *cache.Store, first *early, rec *cache.Record, err error) error {
	if first != nil {
		err = r.runner().Abandon(ctx, r.sandbox(), first.started, err)
	}
	forgetAfterRollback(r, store, rec, err)
	return err
}

// forgetAfterRollback removes the record and the device-info files when the
// rollback succeeded; when it did not, they stay so that the runtime's DEL
// can finish the job.
func forgetAfterRollback(r *request, store *cache.Store, rec *cache.Record, err error) {
	var rb *attach.RollbackError
	if errors.As(err, &rb) {
		r.log.Errorf("rollback incomplete, keeping %s for DEL", store.Path(r.args.ContainerID))
		return
	}
	if rmErr := removeDeviceInfo(rec.DeviceInfoFiles()); rmErr != nil {
		r.log.Errorf("%v", rmErr)
	}
	if rmErr := store.Remove(r.args.ContainerID); rmErr != nil {
		r.log.Errorf("%v", rmErr)
	}
}

// finish applies default-route requests and publishes network-status and
// events. Any failure here fails (and rolls back) the ADD.
func (p *Plugin) finish(ctx context.Context, r *request, api API, pod *corev1.Pod, atts []plan.Attachment, results []types.Result) error {
	sources := make([]netstatus.Source, len(atts))
	for i, a := range atts {
		info, err := readDeviceInfo(a.DeviceInfoFile)
		if err != nil {
			return cnierr.Wrap(cnierr.IOFailure, fmt.Errorf("%s: %w", a.StatusName, err))
		}
		sources[i] = netstatus.Source{Name: a.StatusName, IfName: a.IfName, Default: a.Default, Result: results[i], DeviceInfo: info}
	}
	if err := applyDefaultRoutes(r, atts, sources); err != nil {
		return err
	}
	if api == nil || pod == nil {
		return nil
	}
	entries, err := netstatus.Build(sources)
	if err != nil {
		return cnierr.Wrap(cnierr.Internal, fmt.Errorf("build network-status: %w", err))
	}
	value, err := netstatus.Marshal(entries)
	if err != nil {
		return err
	}
	// Events go out while the status is written: one round trip, not two.
	evErr := make(chan error, 1)
	go func() {
		start := time.Now()
		evErr <- api.RecordEvents(ctx, pod, addedEvents(entries))
		r.phase(PhaseEvents, start)
	}()
	err = api.SetNetworkStatus(ctx, pod.Namespace, pod.Name, value)
	if e := <-evErr; e != nil {
		r.log.Errorf("record events: %v", e)
	}
	return err
}

func addedEvents(entries []netstatus.Entry) []kube.Event {
	events := make([]kube.Event, 0, len(entries))
	for _, e := range entries {
		events = append(events, kube.Event{
			Type: corev1.EventTypeNormal, Reason: "AddedInterface",
			Message: fmt.Sprintf("Add %s %v from %s", e.Interface, e.IPs, e.Name),
		})
	}
	return events
}

func applyDefaultRoutes(r *request, atts []plan.Attachment, sources []netstatus.Source) error {
	for i, a := range atts {
		if a.DefaultRoute == nil {
			continue
		}
		gws, err := netstatus.MoveDefaultRoute(sources, i, a.DefaultRoute)
		if err != nil {
			return cnierr.Wrap(cnierr.InvalidNetConfig, err)
		}
		if err := podnet.SetDefaultRoute(r.args.Netns, a.IfName, gws); err != nil {
			return err
		}
	}
	return nil
}

// lookupPod returns the API client and the pod, or nils outside Kubernetes.
func (p *Plugin) lookupPod(ctx context.Context, r *request) (API, *corev1.Pod, error) {
	if p.NewAPI == nil {
		return nil, nil, nil
	}
	api, err := p.NewAPI(r.conf, r.pod.UID)
	if err != nil {
		return nil, nil, cnierr.Wrap(cnierr.InvalidNetConfig, err)
	}
	if api == nil || r.pod.Name == "" {
		return api, nil, nil
	}
	pod, err := api.GetPod(ctx, r.pod.Namespace, r.pod.Name)
	if err != nil {
		return nil, nil, err
	}
	if err := checkUID(pod, r.pod.UID); err != nil {
		return nil, nil, err
	}
	return api, pod, nil
}

// checkUID rejects a sandbox of an earlier pod with the same name (a
// StatefulSet recreated it); static pods have API mirrors with other UIDs.
func checkUID(pod *corev1.Pod, uid string) error {
	if uid == "" || string(pod.UID) == uid || isStatic(pod) {
		return nil
	}
	return cnierr.New(cnierr.UnknownContainer,
		"pod %s/%s: CNI_ARGS K8S_POD_UID %q does not match the API's pod UID %q: the sandbox belongs to an earlier pod of that name",
		pod.Namespace, pod.Name, uid, pod.UID)
}

func isStatic(pod *corev1.Pod) bool {
	if _, mirror := pod.Annotations["kubernetes.io/config.mirror"]; mirror {
		return true
	}
	src, ok := pod.Annotations["kubernetes.io/config.source"]
	return ok && src != "api"
}

// prepare converts the plan into delegate invocations and the cache record.
func prepare(r *request, atts []plan.Attachment) ([]attach.Attachment, *cache.Record, error) {
	run := make([]attach.Attachment, len(atts))
	rec := &cache.Record{
		ContainerID: r.args.ContainerID, NetNS: r.args.Netns,
		PodNS: r.pod.Namespace, PodName: r.pod.Name, PodUID: r.pod.UID,
		Args:   r.sandbox().Args,
		Config: r.args.StdinData, IfName: r.args.IfName, CNIPath: r.args.Path,
	}
	for i, a := range atts {
		list, err := libcni.ConfListFromBytes(a.Delegate.Conflist)
		if err != nil {
			return nil, nil, cnierr.Wrap(cnierr.InvalidNetConfig, fmt.Errorf("%s: %w", a.StatusName, err))
		}
		run[i] = attach.Attachment{Name: a.StatusName, IfName: a.IfName, List: list, CapabilityArgs: a.CapabilityArgs}
		rec.Attachments = append(rec.Attachments, cache.Attachment{
			StatusName: a.StatusName, IfName: a.IfName, Conflist: a.Delegate.Conflist,
			CapabilityArgs: a.CapabilityArgs, Default: a.Default,
			DeviceID: a.DeviceID, DeviceInfoFile: a.DeviceInfoFile,
		})
		if a.Selection != nil {
			rec.Attachments[i].Selection = plan.SelectionKey(a.Selection)
		}
	}
	return run, rec, nil
}

func waitReadiness(ctx context.Context, path string, timeoutSeconds int) error {
	if path == "" {
		return nil
	}
	deadline := time.Now().Add(time.Duration(timeoutSeconds) * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return cnierr.New(cnierr.TryAgainLater,
				"readinessindicatorfile %s does not exist after %ds: the cluster network is not ready", path, timeoutSeconds)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for readinessindicatorfile %s: %w", path, ctx.Err())
		case <-tick.C:
		}
	}
}
