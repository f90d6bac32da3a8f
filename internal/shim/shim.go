// Package shim is the client side of plexusd: when the plexus configuration
// names a daemonSocket, the plexus binary forwards each CNI request to the
// daemon and prints what it answers. When the daemon cannot be reached:
//
//   - ADD fails at once with code 50 naming the socket (no waiting: the
//     runtime retries the sandbox, and a daemon that is down stays down
//     for longer than any wait that a runtime would tolerate);
//   - DEL and CHECK run locally from the attachment record, with their
//     real errors (they need no API server): in this process in the full
//     plexus binary, in plexus (re-executed) from plexus-shim;
//   - STATUS fails with code 50, so the runtime reports the network as not
//     ready while the daemon is away;
//   - GC fails with code 50 and is left to the runtime's next GC.
//
// Without daemonSocket, or with LocalEnv set to "1" (plexus-shim's
// re-execution of plexus), the request runs locally as before.
//
// The package links no Kubernetes client: plexus-shim, the binary a runtime
// execs on every pod in daemon mode, is built from it.
package shim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/internal/daemon/client"
	"github.com/plexus-cni/plexus/internal/daemon/wire"
)

// Defaults for Shim's bounds.
const (
	DefaultDialTimeout = client.DefaultDialTimeout
	DefaultTimeout     = 5 * time.Minute
)

// LocalEnv, set to "1", makes a request run locally whatever the
// configuration says: plexus-shim sets it when it hands a request it could
// not forward to the full plexus binary.
const LocalEnv = "PLEXUS_LOCAL"

// Shim dispatches CNI requests to plexusd or to the local plugin.
type Shim struct {
	// Local runs requests without the daemon: the plugin in this process,
	// or another binary (package reexec).
	Local skel.CNIFuncs
	// Getenv reads LocalEnv (nil: os.Getenv).
	Getenv func(string) string
	// Stdout receives the daemon's ADD result.
	Stdout io.Writer
	// Stderr receives a note when a request falls back to this process.
	Stderr io.Writer
	// DialTimeout bounds connecting to the socket; Timeout the whole request.
	DialTimeout, Timeout time.Duration
}

// New returns a Shim around the local entry points.
func New(local skel.CNIFuncs) *Shim {
	return &Shim{Local: local, Getenv: os.Getenv, Stdout: os.Stdout, Stderr: os.Stderr}
}

// Funcs returns the skel entry points.
func (s *Shim) Funcs() skel.CNIFuncs {
	local := s.Local
	getenv := s.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	wrap := func(command string, run func(*skel.CmdArgs) error) func(*skel.CmdArgs) error {
		return func(args *skel.CmdArgs) error {
			socket := daemonSocket(args.StdinData)
			if socket == "" || getenv(LocalEnv) == "1" {
				return run(args)
			}
			return s.forward(command, socket, args, run)
		}
	}
	return skel.CNIFuncs{
		Add: wrap("ADD", local.Add), Del: wrap("DEL", local.Del), Check: wrap("CHECK", local.Check),
		GC: wrap("GC", local.GC), Status: wrap("STATUS", local.Status),
	}
}

// daemonSocket reads the one key the shim needs; a configuration that does
// not decode is left to the plugin, which reports it properly.
func daemonSocket(stdin []byte) string {
	var c struct {
		DaemonSocket string `json:"daemonSocket"`
	}
	if err := json.Unmarshal(stdin, &c); err != nil {
		return ""
	}
	return c.DaemonSocket
}

func (s *Shim) forward(command, socket string, args *skel.CmdArgs, local func(*skel.CmdArgs) error) error {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req := wire.NewRequest(command, args)
	if err := req.Validate(); err != nil {
		if command == "DEL" || command == "CHECK" {
			fmt.Fprintf(s.Stderr, "plexus: %v; running %s without the daemon\n", err, command)
			return local(args)
		}
		return types.NewError(types.ErrInvalidEnvironmentVariables, err.Error(), "")
	}
	resp, err := s.Call(ctx, socket, req)
	if err != nil {
		if command == "DEL" || command == "CHECK" {
			fmt.Fprintf(s.Stderr, "plexus: %v; running %s without the daemon\n", err, command)
			return local(args)
		}
		return types.NewError(types.ErrPluginNotAvailable, err.Error(), "")
	}
	return resp.Deliver(s.Stdout)
}

// UnreachableError means the daemon could not be connected to: nothing of
// the request reached it.
type UnreachableError = client.UnreachableError

// Call posts req to the daemon's CNI endpoint at socket (see client.Call).
func (s *Shim) Call(ctx context.Context, socket string, req *wire.Request) (*wire.Response, error) {
	return (&client.Client{DialTimeout: s.DialTimeout}).Call(ctx, socket, req)
}
