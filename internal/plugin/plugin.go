// Package plugin implements the plexus meta-plugin's CNI commands (ADD, DEL,
// CHECK, STATUS, GC): it reads the request, plans the pod's attachments,
// runs the delegates, records what it did, and publishes network-status.
// The binary in cmd/plexus only wires it to skel.
package plugin

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	corev1 "k8s.io/api/core/v1"

	"github.com/plexus-cni/plexus/internal/attach"
	"github.com/plexus-cni/plexus/internal/cache"
	"github.com/plexus-cni/plexus/internal/cnierr"
	"github.com/plexus-cni/plexus/internal/config"
	"github.com/plexus-cni/plexus/internal/delegexec"
	"github.com/plexus-cni/plexus/internal/kube"
	"github.com/plexus-cni/plexus/internal/logging"
	"github.com/plexus-cni/plexus/internal/plan"
	"github.com/plexus-cni/plexus/pkg/cniargs"
)

// API is what the plugin needs from Kubernetes.
type API interface {
	plan.Resolver
	GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error)
	SetNetworkStatus(ctx context.Context, namespace, name, value string) error
	RecordEvents(ctx context.Context, pod *corev1.Pod, events []kube.Event) error
}

// Plugin holds the collaborators of the CNI commands.
type Plugin struct {
	// NewAPI returns the API client for a configuration and the sandbox's
	// K8S_POD_UID ("" when not given; a client answering from a cache
	// re-reads a cached pod with another UID); nil (or a nil return)
	// means no Kubernetes: only configured networks are attached.
	NewAPI func(c *config.NetConf, podUID string) (API, error)
	// Exec runs delegate binaries (nil: libcni's RawExec, whose delegates
	// outlive a killed plexus).
	Exec invoke.Exec
	// Stderr receives log lines when logToStderr is on.
	Stderr io.Writer
	// Timeout bounds one command (default 4 minutes, kubelet's own limit).
	Timeout time.Duration
	// Devices returns the device lookup for networks with a resourceName
	// (nil: KubeletDevices).
	Devices func(c *config.NetConf, api API) DeviceFinder
	// Phases, when set, is told how long each phase of an ADD took.
	Phases PhaseObserver
	// StartClusterEarly starts the cluster network's delegates while the
	// pod and its networks are read, when they cannot change it (see
	// startCluster). It pays when those reads are round trips to the API
	// server (plexus in process), not when they come from a cache
	// (plexusd), where it would only write the record twice.
	StartClusterEarly bool

	ops ops // the ADDs running, which a DEL of their sandbox cancels
}

// The phases of an ADD that Phases hears of. PhaseDelegate is one
// attachment's delegates (its conflist, labelled with its first plugin's
// type); the others are plexus's own work.
const (
	PhasePlan     = "plan"     // readiness file, pod and NAD reads, devices, the plan
	PhaseRecord   = "record"   // the attachment record and device-info files
	PhaseDelegate = "delegate" // one attachment's delegates
	PhaseStatus   = "status"   // default routes and the network-status write
	PhaseEvents   = "events"   // the AddedInterface events (while status is written)
)

// PhaseObserver hears how long each phase of an ADD took; plugin is the
// delegate's type for PhaseDelegate, "" otherwise. It is called from
// several goroutines at once.
type PhaseObserver interface {
	ObservePhase(phase, plugin string, d time.Duration)
}

// Default returns the plugin as the binary runs it.
func Default() *Plugin {
	return &Plugin{NewAPI: KubeconfigAPI, Stderr: os.Stderr, Exec: &delegexec.Exec{Stderr: os.Stderr}, StartClusterEarly: true}
}

// KubeconfigAPI builds the API client from the configuration's kubeconfig;
// without one, the plugin runs without Kubernetes.
func KubeconfigAPI(c *config.NetConf, _ string) (API, error) {
	if c.Kubeconfig == "" {
		return nil, nil
	}
	cl, err := kube.NewFromKubeconfig(c.Kubeconfig, kube.Options{ConfDir: c.ConfDir})
	if err != nil {
		return nil, err
	}
	return cl, nil
}

// request is one parsed CNI invocation.
type request struct {
	args *skel.CmdArgs
	conf *config.NetConf
	pod  podArgs
	log  *logging.Logger
	cni  *libcni.CNIConfig
	// phases is Plugin.Phases (nil: not measured).
	phases PhaseObserver
}

// phase tells the observer, if any, that phase took since start.
func (r *request) phase(phase string, start time.Time) {
	if r.phases != nil {
		r.phases.ObservePhase(phase, "", time.Since(start))
	}
}

// observeDelegate is the runner's Observe: one attachment's delegates.
func (r *request) observeDelegate(a *attach.Attachment, d time.Duration, _ error) {
	if r.phases == nil {
		return
	}
	typ := ""
	if len(a.List.Plugins) > 0 {
		typ = a.List.Plugins[0].Network.Type
	}
	r.phases.ObservePhase(PhaseDelegate, typ, d)
}

func (p *Plugin) load(args *skel.CmdArgs) (*request, error) {
	conf, err := config.Parse(args.StdinData)
	if err != nil {
		return nil, err
	}
	pa, err := parseCNIArgs(args.Args)
	if err != nil {
		return nil, cnierr.Wrap(cnierr.InvalidEnv, err) // the runtime's environment, not the user's config
	}
	var stderr io.Writer
	if conf.LogToStderr == nil || *conf.LogToStderr {
		stderr = p.Stderr
	}
	level, _ := logging.ParseLevel(conf.LogLevel) // conf.Validate checked it
	log := logging.New(logging.Options{
		Level: level, File: conf.LogFile, Stderr: stderr,
		Prefix: fmt.Sprintf("plexus %s %s: ", shortID(args.ContainerID), pa.podRef()),
	})
	path := append([]string{conf.BinDir}, filepath.SplitList(args.Path)...)
	cni := libcni.NewCNIConfigWithCacheDir(path, conf.CNIDir, p.Exec)
	return &request{args: args, conf: conf, pod: pa, log: log, cni: cni, phases: p.Phases}, nil
}

func (r *request) store() *cache.Store {
	return cache.New(filepath.Join(r.conf.CNIDir, "attachments"))
}

func (r *request) runner() *attach.Runner {
	return &attach.Runner{CNI: r.cni, Concurrency: r.conf.AttachConcurrency,
		ClusterFirst: r.conf.ClusterNetworkFirst, Observe: r.observeDelegate}
}

// sandbox returns the runtime parameters shared by every delegate.
func (r *request) sandbox() attach.Sandbox {
	return attach.Sandbox{ContainerID: r.args.ContainerID, NetNS: r.args.Netns, Args: r.pod.delegateArgs()}
}

func (p *Plugin) context() (context.Context, context.CancelFunc) {
	t := p.Timeout
	if t == 0 {
		t = 4 * time.Minute
	}
	return context.WithTimeout(context.Background(), t)
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// podArgs are the Kubernetes keys of CNI_ARGS, plus every other pair.
type podArgs struct {
	Namespace, Name, UID, SandboxID string
	pairs                           [][2]string
}

func (a podArgs) podRef() string {
	if a.Name == "" {
		return "-"
	}
	return a.Namespace + "/" + a.Name
}

func parseCNIArgs(s string) (podArgs, error) {
	pairs, err := cniargs.Parse(s)
	if err != nil {
		return podArgs{}, err
	}
	a := podArgs{pairs: pairs}
	for _, kv := range pairs {
		switch kv[0] {
		case "K8S_POD_NAMESPACE":
			a.Namespace = kv[1]
		case "K8S_POD_NAME":
			a.Name = kv[1]
		case "K8S_POD_UID":
			a.UID = kv[1]
		case "K8S_POD_INFRA_CONTAINER_ID":
			a.SandboxID = kv[1]
		}
	}
	return a, nil
}

// delegateArgs are the CNI_ARGS every delegate receives: IgnoreUnknown and
// the pod keys first (the reference order), then every other incoming pair.
func (a podArgs) delegateArgs() [][2]string {
	out := [][2]string{{"IgnoreUnknown", "true"}}
	if a.Name != "" {
		out = append(out,
			[2]string{"K8S_POD_NAMESPACE", a.Namespace},
			[2]string{"K8S_POD_NAME", a.Name},
			[2]string{"K8S_POD_INFRA_CONTAINER_ID", a.SandboxID},
			[2]string{"K8S_POD_UID", a.UID})
	}
	for _, kv := range a.pairs {
		switch kv[0] {
		case "IgnoreUnknown", "K8S_POD_NAMESPACE", "K8S_POD_NAME", "K8S_POD_INFRA_CONTAINER_ID", "K8S_POD_UID":
			continue
		}
		out = append(out, kv)
	}
	return out
}
