// Package plugin implements plexus-ipam's CNI commands (ADD, DEL, CHECK,
// GC, STATUS) on top of the configuration parser and a store.Store; the
// binary in cmd/plexus-ipam only wires it to skel.
package plugin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/pkg/fielderr"
	"github.com/plexus-cni/plexus/pkg/ipam/config"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
	"github.com/plexus-cni/plexus/pkg/ipam/store/etcdstore"
	"github.com/plexus-cni/plexus/pkg/ipam/store/kubestore"
)

// Logf receives printf-style notes.
type Logf func(format string, args ...any)

// Logger is the log of one request. plexus's binaries log in the
// Whereabouts format to stderr and the configuration's log_file.
type Logger interface {
	Debugf(format string, args ...any)
	Infof(format string, args ...any)
	Errorf(format string, args ...any)
	Close() error
}

// Plugin holds the collaborators of the commands.
type Plugin struct {
	Loader config.Loader
	// OpenStore returns the store a configuration selects; the store's
	// own notes go to logf.
	OpenStore func(c *config.Conf, logf Logf) (store.Store, error)
	// OpenLog opens the log of one request at the configuration's
	// log_level and log_file (nil: nothing is logged).
	OpenLog func(level, file string) Logger
	// Getenv and Hostname find the node name.
	Getenv   func(string) string
	Hostname func() (string, error)
	Now      func() time.Time
	// Print writes the ADD result (types.PrintResult: stdout, converted
	// to the configuration's cniVersion).
	Print func(res types.Result, cniVersion string) error
	// Timeout bounds ADD, DEL, CHECK and GC (STATUS uses StatusTimeout).
	Timeout       time.Duration
	StatusTimeout time.Duration
}

// Default returns the plugin as the binary runs it, but for its log
// (OpenLog), which the binary sets.
func Default() *Plugin {
	return &Plugin{
		Loader: config.DefaultLoader(), OpenStore: OpenStore, Getenv: os.Getenv, Hostname: os.Hostname,
		Now: time.Now, Print: types.PrintResult, Timeout: 2 * time.Minute, StatusTimeout: 10 * time.Second,
	}
}

// OpenStore opens the etcd store when etcd_host is set, else the
// Kubernetes store with the configured kubeconfig.
func OpenStore(c *config.Conf, logf Logf) (store.Store, error) {
	if c.Etcd != nil {
		e := c.Etcd
		s, err := etcdstore.New(etcdstore.Options{Endpoints: e.Endpoints, Username: e.Username, Password: e.Password,
			CertFile: e.CertFile, KeyFile: e.KeyFile, CACertFile: e.CACertFile})
		if err != nil {
			return nil, withCode(types.ErrInvalidNetworkConfig, err)
		}
		return s, nil
	}
	if c.Kubeconfig == "" {
		return nil, withCode(types.ErrInvalidNetworkConfig, fielderr.New("ipam.kubernetes.kubeconfig", "",
			"is required unless etcd_host is set (on a node with plexusd, %s names one)", strings.Join(config.DefaultLoader().DefaultPaths, " or ")))
	}
	s, err := kubestore.NewFromKubeconfig(c.Kubeconfig, kubestore.Options{Namespace: c.Namespace}, config.DefaultNamespace)
	if err != nil {
		return nil, withCode(types.ErrInvalidNetworkConfig, err)
	}
	s.Logf = logf
	return s, nil
}

// request is one parsed invocation.
type request struct {
	args *skel.CmdArgs
	conf *config.Conf
	log  Logger
	st   store.Store
	node string
}

// open parses the invocation and opens the store; close releases both.
func (p *Plugin) open(args *skel.CmdArgs) (*request, error) {
	cniArgs, err := config.ParseArgs(args.Args)
	if err != nil {
		return nil, withCode(types.ErrInvalidEnvironmentVariables, err)
	}
	conf, err := p.Loader.Load(args.StdinData, cniArgs)
	if err != nil {
		return nil, withCode(types.ErrInvalidNetworkConfig, err)
	}
	var log Logger = nopLogger{}
	if p.OpenLog != nil {
		log = p.OpenLog(conf.LogLevel, conf.LogFile)
	}
	st, err := p.OpenStore(conf, log.Debugf)
	if err != nil {
		log.Close()
		return nil, err
	}
	return &request{args: args, conf: conf, log: log, st: st, node: p.nodeName()}, nil
}

func (r *request) close() {
	r.st.Close()
	r.log.Close()
}

// nodeName is $NODENAME, $NODE_NAME or the host name.
func (p *Plugin) nodeName() string {
	for _, k := range []string{"NODENAME", "NODE_NAME"} {
		if v := p.Getenv(k); v != "" {
			return v
		}
	}
	h, _ := p.Hostname()
	return h
}

func (p *Plugin) context(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// with opens the request (configuration, log, store), runs fn bounded by
// d, and closes the request again.
func (p *Plugin) with(args *skel.CmdArgs, d time.Duration, fn func(context.Context, *request) error) error {
	r, err := p.open(args)
	if err != nil {
		return err
	}
	defer r.close()
	ctx, cancel := p.context(d)
	defer cancel()
	return fn(ctx, r)
}

// storeError gives a store failure its CNI code: 11 when retrying may
// help (store unreachable or busy, range exhausted, requested address
// held), else 999.
func storeError(err error) error {
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrExhausted) || errors.Is(err, store.ErrInUse) ||
		errors.Is(err, context.DeadlineExceeded) {
		return withCode(types.ErrTryAgainLater, err)
	}
	return withCode(types.ErrInternal, err)
}

// Status implements STATUS: code 50 when the store does not answer.
func (p *Plugin) Status(args *skel.CmdArgs) error {
	return p.with(args, p.StatusTimeout, p.status)
}

func (p *Plugin) status(ctx context.Context, r *request) error {
	if err := r.st.Ping(ctx); err != nil {
		r.log.Errorf("STATUS: store not reachable: %v", err)
		return withCode(types.ErrPluginNotAvailable, fmt.Errorf("plexus-ipam store: %w", err))
	}
	return nil
}

// Funcs returns the commands for skel.
func (p *Plugin) Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: p.Add, Del: p.Del, Check: p.Check, GC: p.GC, Status: p.Status}
}
