package daemon

import (
	"context"
	"os"
	"strings"

	"github.com/containernetworking/cni/pkg/invoke"

	"github.com/plexus-cni/plexus/internal/daemon/options"
	"github.com/plexus-cni/plexus/internal/daemon/wire"
	"github.com/plexus-cni/plexus/internal/delegexec"
)

// delegateExec runs the delegates of the requests plexusd serves. Their
// environment is what libcni gives them (plexusd's own plus the CNI_*
// variables) with set added and the variables of unset removed: plexusd
// passes them to its children without changing its own environment.
type delegateExec struct {
	invoke.Exec
	set   []string // KEY=value
	unset []string // KEY
}

// newDelegateExec returns the exec of plexusd's delegates. They get
// NODE_NAME when plexusd's environment (getenv) has neither NODENAME nor
// NODE_NAME, so that IPAM plugins record this node, and wire.SocketEnv,
// the socket plexus-ipam forwards to, only while /ipam is served (else it
// is removed). They die with plexusd, and with o.DelegateRoot they run
// chrooted into the host's root (delegexec.Exec).
func newDelegateExec(o *options.Options, getenv func(string) string) *delegateExec {
	e := &delegateExec{Exec: &delegexec.Exec{Root: o.DelegateRoot, Stderr: os.Stderr}}
	if getenv("NODENAME") == "" && getenv("NODE_NAME") == "" {
		e.set = append(e.set, "NODE_NAME="+o.NodeName)
	}
	if o.ServeIPAM {
		e.set = append(e.set, wire.SocketEnv+"="+o.SocketPath)
	} else {
		e.unset = append(e.unset, wire.SocketEnv)
	}
	return e
}

// ExecPlugin implements invoke.Exec.
func (e *delegateExec) ExecPlugin(ctx context.Context, pluginPath string, stdinData []byte, environ []string) ([]byte, error) {
	return e.Exec.ExecPlugin(ctx, pluginPath, stdinData, e.environ(environ))
}

// environ returns in without the variables set or unset replaces, then set.
func (e *delegateExec) environ(in []string) []string {
	drop := map[string]bool{}
	for _, kv := range e.set {
		k, _, _ := strings.Cut(kv, "=")
		drop[k] = true
	}
	for _, k := range e.unset {
		drop[k] = true
	}
	out := make([]string, 0, len(in)+len(e.set))
	for _, kv := range in {
		if k, _, _ := strings.Cut(kv, "="); !drop[k] {
			out = append(out, kv)
		}
	}
	return append(out, e.set...)
}
