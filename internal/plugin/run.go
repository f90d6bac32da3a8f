package plugin

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/internal/cache"
	"github.com/plexus-cni/plexus/internal/cnierr"
)

// Do runs one CNI command (CNI_COMMAND's value) and returns the result to
// print (ADD only) with the version to print it in. plexusd calls it for
// the requests it serves; the binary calls it through Funcs.
func (p *Plugin) Do(ctx context.Context, command string, args *skel.CmdArgs) (types.Result, string, error) {
	r, err := p.load(args)
	if err != nil {
		return nil, "", err
	}
	defer r.log.Close()
	if command == "ADD" || command == "DEL" || command == "CHECK" {
		unlock, err := p.turn(&ctx, command, r)
		if err != nil {
			r.log.Errorf("%s failed: %v", command, err)
			return nil, "", err
		}
		defer unlock()
	}
	var res types.Result
	switch command {
	case "ADD":
		res, err = p.add(ctx, r)
	case "DEL":
		err = p.del(ctx, r)
	case "CHECK":
		err = p.check(ctx, r)
	case "GC":
		err = p.gc(ctx, r)
	case "STATUS":
		err = p.status(ctx, r)
	default:
		err = cnierr.New(cnierr.InvalidEnv, "CNI_COMMAND: invalid value %q", command)
	}
	if err != nil {
		r.log.Errorf("%s failed: %v", command, err)
		return nil, "", err
	}
	return res, r.conf.CNIVersion, nil
}

// Funcs adapts Do to skel: errors become CNI error objects with their code,
// an ADD result is printed in the configuration's version.
func (p *Plugin) Funcs() skel.CNIFuncs {
	run := func(command string) func(*skel.CmdArgs) error {
		return func(args *skel.CmdArgs) error {
			ctx, cancel := p.context()
			defer cancel()
			res, version, err := p.Do(ctx, command, args)
			if err != nil {
				return cnierr.ToCNI(err)
			}
			if res == nil {
				return nil
			}
			if err := types.PrintResult(res, version); err != nil {
				return cnierr.ToCNI(fmt.Errorf("print result: %w", err))
			}
			return nil
		}
	}
	return skel.CNIFuncs{Add: run("ADD"), Del: run("DEL"), Check: run("CHECK"), GC: run("GC"), Status: run("STATUS")}
}

// turn waits for the sandbox's turn (cache.Store.Lock) and returns the
// function that ends it. A DEL first cancels an ADD of the same sandbox
// running in this process (plexusd still running one whose runtime gave
// up): the sandbox goes away, and that ADD rolls back what it did. An ADD
// runs with *ctx replaced by one that such a DEL cancels.
func (p *Plugin) turn(ctx *context.Context, command string, r *request) (func(), error) {
	id := r.args.ContainerID
	if command == "DEL" {
		p.ops.cancel(id, errSandboxDeleted)
	}
	unlock, err := r.store().Lock(*ctx, id)
	if errors.Is(err, cache.ErrInvalidID) {
		return nil, cnierr.Wrap(cnierr.InvalidEnv, err)
	}
	if err != nil {
		return nil, cnierr.Wrap(cnierr.TryAgainLater, err)
	}
	if command != "ADD" {
		return unlock, nil
	}
	c, done := p.ops.start(*ctx, id)
	*ctx = c
	return func() { done(); unlock() }, nil
}

// errSandboxDeleted cancels an ADD whose sandbox is being deleted.
var errSandboxDeleted = errors.New("the runtime deletes this sandbox (a DEL arrived)")

// ops are the ADDs running in this process, by container ID.
type ops struct {
	mu  sync.Mutex
	add map[string]*op
}

type op struct{ cancel context.CancelCauseFunc }

func (o *ops) start(ctx context.Context, id string) (context.Context, func()) {
	c, cancel := context.WithCancelCause(ctx)
	me := &op{cancel: cancel}
	o.mu.Lock()
	if o.add == nil {
		o.add = map[string]*op{}
	}
	o.add[id] = me
	o.mu.Unlock()
	return c, func() {
		o.mu.Lock()
		if o.add[id] == me {
			delete(o.add, id)
		}
		o.mu.Unlock()
		cancel(nil)
	}
}

func (o *ops) cancel(id string, cause error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if a := o.add[id]; a != nil {
		a.cancel(cause)
	}
}
