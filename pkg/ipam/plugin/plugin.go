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

	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/pkg/fielderr"
	"github.com/plexus-cni/plexus/pkg/ipam/config"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
	"github.com/plexus-cni/plexus/pkg/ipam/store/etcdstore"
	"github.com/plexus-cni/plexus/pkg/ipam/store/kubestore"
	"github.com/plexus-cni/plexus/pkg/ipam/store/nodelock"
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
	// Getenv reads the process's environment for Funcs (EnvKeys); Do
	// reads none but the request's.
	Getenv func(string) string
	// Hostname names the node when the request's environment does not.
	Hostname func() (string, error)
	Now      func() time.Time
	// Print writes the ADD result for Funcs (types.PrintResult: stdout,
	// converted to the configuration's cniVersion).
	Print func(res types.Result, cniVersion string) error
	// Timeout bounds ADD, DEL, CHECK and GC (STATUS uses StatusTimeout)
	// within the request's own context.
	Timeout       time.Duration
	StatusTimeout time.Duration
}

// Default returns the plugin as the binary runs it, but for its log
// (OpenLog), which the binary sets. Its stores take turns with the other
// plexus-ipam processes of the node (OpenNodeStore).
func Default() *Plugin {
	return &Plugin{
		Loader: config.DefaultLoader(), OpenStore: OpenNodeStore(nodelock.FromEnv(os.Getenv)), Getenv: os.Getenv, Hostname: os.Hostname,
		Now: time.Now, Print: types.PrintResult, Timeout: 2 * time.Minute, StatusTimeout: 10 * time.Second,
	}
}

// OpenStore opens the etcd store when etcd_host is set, else the
// Kubernetes store with the configured kubeconfig (at kubestore's default
// request rate).
func OpenStore(c *config.Conf, logf Logf) (store.Store, error) {
	return openStore(c, logf, kubestore.Options{})
}

// openStore is OpenStore with the Kubernetes store's rate (rate.QPS and
// rate.Burst; 0: kubestore's defaults).
func openStore(c *config.Conf, logf Logf, rate kubestore.Options) (store.Store, error) {
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
	opts := rate
	opts.Namespace = c.Namespace
	s, err := kubestore.NewFromKubeconfig(c.Kubeconfig, opts, config.DefaultNamespace)
	if err != nil {
		return nil, withCode(types.ErrInvalidNetworkConfig, err)
	}
	s.Logf = logf
	return s, nil
}

// OpenNodeStore returns OpenStore for a process that is one of many on its
// node (plexus-ipam-local, one per request): its store claims and frees
// addresses of a space only in that space's turn under l, so that a burst
// of the node's pods does not race itself (package nodelock). plexusd does
// not need it: its one client per store coordinates its requests itself.
func OpenNodeStore(l *nodelock.Locker) func(c *config.Conf, logf Logf) (store.Store, error) {
	return func(c *config.Conf, logf Logf) (store.Store, error) {
		s, err := OpenStore(c, logf)
		if err != nil {
			return nil, err
		}
		nl := *l
		nl.Logf = logf
		return nodelock.Wrap(s, &nl), nil
	}
}

// storeError gives a store failure its CNI code: 11 when retrying may
// help (store unreachable or busy, range exhausted, requested address
// held, the request's context ended), else 999.
func storeError(err error) error {
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrExhausted) || errors.Is(err, store.ErrInUse) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return withCode(types.ErrTryAgainLater, err)
	}
	return withCode(types.ErrInternal, err)
}

// status implements STATUS: code 50 when the store does not answer.
func (p *Plugin) status(ctx context.Context, r *request) error {
	if err := r.st.Ping(ctx); err != nil {
		r.log.Errorf("STATUS: store not reachable: %v", err)
		return withCode(types.ErrPluginNotAvailable, fmt.Errorf("plexus-ipam store: %w", err))
	}
	return nil
}
