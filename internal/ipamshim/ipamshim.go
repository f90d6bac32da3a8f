// Package ipamshim lets plexus-ipam run inside plexusd. A delegate that
// plexusd started has wire.SocketEnv in its environment, naming the
// daemon's socket: plexus-ipam then posts the request (CNI_* variables,
// NODENAME/NODE_NAME and the configuration) to wire.IPAMPath, where the
// daemon runs it with long-lived store clients, and prints the answer as it
// would have printed its own. When the variable is unset, or the socket is
// absent or refuses connections (plexusd not installed, restarting or
// shutting down), the request runs locally as before (in plexus-ipam-local,
// see package reexec): the stores are safe for any number of processes.
//
// The package links no store and no Kubernetes client: plexus-ipam, which
// every pod's IPAM execs, is built from it.
package ipamshim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/internal/daemon/client"
	"github.com/plexus-cni/plexus/internal/daemon/wire"
)

// EnvKeys are the variables besides CNI_* that plexus-ipam reads
// (pkg/ipam/plugin.EnvKeys; a test keeps the two equal): they go to the
// daemon with the request.
var EnvKeys = []string{"NODENAME", "NODE_NAME"}

// Forwarder dispatches plexus-ipam's commands to plexusd or to Local.
type Forwarder struct {
	// Local runs a command without the daemon.
	Local skel.CNIFuncs
	// Getenv reads wire.SocketEnv and the forwarded variables.
	Getenv func(string) string
	// Stdout receives the daemon's ADD result.
	Stdout io.Writer
	// Client posts to the daemon (its Path is wire.IPAMPath).
	Client *client.Client
	// Timeout bounds a forwarded request (default DefaultTimeout).
	Timeout time.Duration
}

// DefaultTimeout bounds a forwarded request: longer than plexus-ipam's own
// bound of a command (2 minutes) plus a wait for a slot.
const DefaultTimeout = 4 * time.Minute

// New returns a Forwarder around the in-process commands.
func New(local skel.CNIFuncs) *Forwarder {
	return &Forwarder{Local: local, Getenv: os.Getenv, Stdout: os.Stdout,
		Client: &client.Client{Path: wire.IPAMPath}}
}

// Funcs returns the skel entry points.
func (f *Forwarder) Funcs() skel.CNIFuncs {
	wrap := func(command string, local func(*skel.CmdArgs) error) func(*skel.CmdArgs) error {
		return func(args *skel.CmdArgs) error {
			socket := f.Getenv(wire.SocketEnv)
			if socket == "" {
				return local(args)
			}
			return f.forward(command, socket, args, local)
		}
	}
	return skel.CNIFuncs{
		Add: wrap("ADD", f.Local.Add), Del: wrap("DEL", f.Local.Del), Check: wrap("CHECK", f.Local.Check),
		GC: wrap("GC", f.Local.GC), Status: wrap("STATUS", f.Local.Status),
	}
}

func (f *Forwarder) forward(command, socket string, args *skel.CmdArgs, local func(*skel.CmdArgs) error) error {
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req := wire.NewRequest(command, args)
	req.Env = f.env()
	if req.Validate() != nil {
		return local(args) // JSON would change it on the way; this process has it as it is
	}
	resp, err := f.Client.Call(ctx, socket, req)
	var unreachable *client.UnreachableError
	if errors.As(err, &unreachable) {
		return local(args)
	}
	if err != nil {
		// The daemon got the request and failed before answering: it may
		// have done part of it. Every command is idempotent; the runtime
		// retries.
		return types.NewError(types.ErrTryAgainLater, fmt.Sprintf("plexus-ipam: %v", err), "")
	}
	return resp.Deliver(f.Stdout)
}

// env returns the variables besides CNI_* that plexus-ipam reads.
func (f *Forwarder) env() map[string]string {
	var env map[string]string
	for _, k := range EnvKeys {
		if v := f.Getenv(k); v != "" {
			if env == nil {
				env = map[string]string{}
			}
			env[k] = v
		}
	}
	return env
}
