package plugin

import (
	"context"
	"fmt"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

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
