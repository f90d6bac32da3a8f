package plugin

import (
	"context"
	"fmt"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/pkg/ipam/config"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

// Request is one invocation of a command: what the runtime passed (the
// CNI_* variables and stdin, in Args) and the other environment variables
// the plugin reads (EnvKeys). A command reads nothing else of its process,
// so concurrent requests in one process (plexusd) never see each other's.
type Request struct {
	// Command is CNI_COMMAND: ADD, DEL, CHECK, GC or STATUS.
	Command string
	Args    *skel.CmdArgs
	Env     map[string]string
}

// EnvKeys returns the environment variables besides CNI_* that a request
// carries: NODENAME, then NODE_NAME, name the node of its allocations.
func EnvKeys() []string { return []string{"NODENAME", "NODE_NAME"} }

// Do runs req until ctx ends, bounded by Timeout (StatusTimeout for
// STATUS), and returns the ADD result with the cniVersion to print it in.
// Every store call takes that context: when it ends, the command fails with
// code 11 and an ADD releases what it took.
func (p *Plugin) Do(ctx context.Context, req Request) (types.Result, string, error) {
	run := p.command(req.Command)
	if run == nil {
		return nil, "", newError(types.ErrInvalidEnvironmentVariables, "CNI_COMMAND %q: not a plexus-ipam command", req.Command)
	}
	timeout := p.Timeout
	if req.Command == "STATUS" {
		timeout = p.StatusTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r, err := p.open(req)
	if err != nil {
		return nil, "", err
	}
	defer r.close()
	res, err := run(ctx, r)
	if err != nil {
		return nil, "", err
	}
	return res, r.conf.CNIVersion, nil
}

type command func(context.Context, *request) (types.Result, error)

func (p *Plugin) command(name string) command {
	noResult := func(f func(context.Context, *request) error) command {
		return func(ctx context.Context, r *request) (types.Result, error) { return nil, f(ctx, r) }
	}
	switch name {
	case "ADD":
		return p.add
	case "DEL":
		return noResult(p.del)
	case "CHECK":
		return noResult(p.check)
	case "GC":
		return noResult(p.gc)
	case "STATUS":
		return noResult(p.status)
	}
	return nil
}

// Funcs returns the commands for skel: the process's own invocation, with
// its environment (Getenv) and the ADD result printed (Print).
func (p *Plugin) Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: p.Add, Del: p.Del, Check: p.Check, GC: p.GC, Status: p.Status}
}

// Add implements ADD: one address per slot, the same ones again for a
// repeated ADD; on failure the addresses taken by this call are released.
func (p *Plugin) Add(args *skel.CmdArgs) error { return p.runOwn("ADD", args) }

// Del implements DEL: it releases every slot's address (on a sticky
// network: hands it to the pod name's reservation); unknown ones are fine,
// store failures are returned (never hidden).
func (p *Plugin) Del(args *skel.CmdArgs) error { return p.runOwn("DEL", args) }

// Check implements CHECK: every slot must still hold an address, and it
// must be one of the prevResult's, when there is one.
func (p *Plugin) Check(args *skel.CmdArgs) error { return p.runOwn("CHECK", args) }

// GC implements GC: every allocation of this network on this node whose
// attachment is not in cni.dev/valid-attachments is freed. Errors do not
// stop the sweep; all are returned.
func (p *Plugin) GC(args *skel.CmdArgs) error { return p.runOwn("GC", args) }

// Status implements STATUS: code 50 when the store does not answer.
func (p *Plugin) Status(args *skel.CmdArgs) error { return p.runOwn("STATUS", args) }

// runOwn runs the process's own invocation of command.
func (p *Plugin) runOwn(command string, args *skel.CmdArgs) error {
	env := map[string]string{}
	for _, k := range EnvKeys() {
		if v := p.Getenv(k); v != "" {
			env[k] = v
		}
	}
	res, version, err := p.Do(context.Background(), Request{Command: command, Args: args, Env: env})
	if err != nil || res == nil {
		return err
	}
	if err := p.Print(res, version); err != nil {
		return fmt.Errorf("print the result: %w", err)
	}
	return nil
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
func (p *Plugin) open(req Request) (*request, error) {
	args := req.Args
	if args == nil {
		args = &skel.CmdArgs{}
	}
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
	return &request{args: args, conf: conf, log: log, st: st, node: p.nodeName(req.Env)}, nil
}

func (r *request) close() {
	r.st.Close()
	r.log.Close()
}

// nodeName is the request's NODENAME, NODE_NAME or the host name.
func (p *Plugin) nodeName(env map[string]string) string {
	for _, k := range EnvKeys() {
		if v := env[k]; v != "" {
			return v
		}
	}
	h, _ := p.Hostname()
	return h
}
