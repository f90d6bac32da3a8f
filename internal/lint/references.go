package lint

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/plexus-cni/plexus/internal/plan"
	"github.com/plexus-cni/plexus/pkg/nad"
	"github.com/plexus-cni/plexus/pkg/netselect"
)

// clusterInterface is CNI_IFNAME of the cluster network, as runtimes set it.
const clusterInterface = "eth0"

// podRequest is what a pod or pod template asks of the plugin: its
// networks and default-network annotations, where they parsed.
type podRequest struct {
	networks, defaultNetwork annotationAt
}

// annotationAt is an annotation's value and where it is written.
type annotationAt struct {
	value string
	line  int
	field string
}

// CheckReferences runs, for every pod and pod template, the plugin's own
// planner (internal/plan) against the NADs of all the files read: what ADD
// would reject becomes a problem. It finds two selections with one
// interface name (eth0 included), capabilities a NAD does not declare,
// and references to NADs that are missing from the files while the files
// hold other NADs of that namespace. A namespace none of whose NADs is
// given is not checked: its NADs are taken to exist and to declare every
// capability, as are NADs whose config lint cannot see (an empty
// spec.config or one with problems).
func (r *Report) CheckReferences() {
	files := filesNADs{byKey: map[string]*nad.Delegate{}, byNamespace: map[string][]string{}}
	for i := range r.Objects {
		if o := &r.Objects[i]; o.Kind == nad.Kind {
			files.byKey[o.Namespace+"/"+o.Name] = o.delegate
			files.byNamespace[o.Namespace] = append(files.byNamespace[o.Namespace], o.Name)
		}
	}
	for i := range r.Objects {
		if o := &r.Objects[i]; o.request != nil {
			r.checkRequest(o, files)
		}
	}
	r.sortProblems()
}

func (r *Report) checkRequest(o *Object, files filesNADs) {
	ctx := context.Background()
	add := func(at annotationAt, err error) {
		r.Problems = append(r.Problems, Problem{File: o.File, Line: at.line, Object: objectLabel(o), Field: at.field, Message: err.Error()})
	}
	if sel := o.DefaultNetwork; o.request.defaultNetwork.line > 0 && sel != nil {
		if _, err := files.NAD(ctx, sel.Namespace, sel.Name); err != nil {
			add(o.request.defaultNetwork, fmt.Errorf("default network %s/%s: %w", sel.Namespace, sel.Name, err))
		}
	}
	if o.request.networks.line == 0 {
		return
	}
	in := plan.Input{
		Pod: &plan.Pod{Namespace: o.Namespace, Name: o.Name,
			Annotations: map[string]string{netselect.NetworksAnnotation: o.request.networks.value}},
		IfName:  clusterInterface,
		Cluster: unseen("the cluster network"),
	}
	if _, err := plan.Build(ctx, in, files); err != nil {
		add(o.request.networks, err)
	}
}

// filesNADs resolves NADs from the files, as plan.Resolver.
type filesNADs struct {
	byKey       map[string]*nad.Delegate // nil: config not seen
	byNamespace map[string][]string
}

// NAD returns the NAD's config from the files; an unseen one when the
// files hold no NAD of the namespace, or the NAD's config is not seen.
func (f filesNADs) NAD(_ context.Context, namespace, name string) (*nad.Delegate, error) {
	key := namespace + "/" + name
	if d, ok := f.byKey[key]; ok && d != nil {
		return d, nil
	} else if ok || len(f.byNamespace[namespace]) == 0 {
		return unseen(key), nil
	}
	names := slices.Clone(f.byNamespace[namespace])
	slices.Sort(names)
	return nil, fmt.Errorf("NetworkAttachmentDefinition %s: %w in the files given (they hold %s's %s)",
		key, nad.ErrNotFound, namespace, strings.Join(names, ", "))
}

// unseen stands for a network whose config lint does not have: it
// declares every capability a selection can ask for.
func unseen(source string) *nad.Delegate {
	return &nad.Delegate{Name: source, Source: source, CNIVersion: "1.0.0",
		Conflist: []byte(`{"cniVersion":"1.0.0","name":"unseen","plugins":[{"type":"unseen"}]}`),
		Types:    []string{"unseen"},
		Capabilities: map[string]bool{"ips": true, "mac": true, "portMappings": true, "bandwidth": true,
			"infinibandGUID": true, "deviceID": true}}
}
