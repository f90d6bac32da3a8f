package netstatus

import (
	"fmt"
	"net"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// MoveDefaultRoute rewrites the results in sources so that attachment idx
// carries the default route of each gateway's family and no other
// attachment does, and returns the gateways to install. An empty gateways
// list means "this attachment's own gateways" (taken from its result); the
// reference implementation instead strips every default route, which no
// user asking for a default route wants (documented in docs/architecture.md).
func MoveDefaultRoute(sources []Source, idx int, gateways []net.IP) ([]net.IP, error) {
	res, err := asCurrent(sources[idx])
	if err != nil {
		return nil, err
	}
	if len(gateways) == 0 {
		for _, ip := range res.IPs {
			if ip.Gateway != nil {
				gateways = append(gateways, ip.Gateway)
			}
		}
		if len(gateways) == 0 {
			return nil, fmt.Errorf("%s: default-route: an empty list asks for the attachment's own gateway, but its result has none", sources[idx].Name)
		}
	}
	for _, gw := range gateways {
		v4 := gw.To4() != nil
		for j := range sources {
			r, err := asCurrent(sources[j])
			if err != nil {
				return nil, err
			}
			r.Routes = withoutDefault(r.Routes, v4)
			if j == idx {
				r.Routes = append(r.Routes, defaultRoute(gw))
			}
			sources[j].Result = r
		}
	}
	return gateways, nil
}

func asCurrent(s Source) (*current.Result, error) {
	if s.Result == nil {
		return &current.Result{CNIVersion: current.ImplementedSpecVersion}, nil
	}
	r, err := current.NewResultFromResult(s.Result)
	if err != nil {
		return nil, fmt.Errorf("%s: convert result: %w", s.Name, err)
	}
	return r, nil
}

func withoutDefault(routes []*types.Route, v4 bool) []*types.Route {
	out := routes[:0:0]
	for _, r := range routes {
		if isDefault(r.Dst) && (r.Dst.IP.To4() != nil) == v4 {
			continue
		}
		out = append(out, r)
	}
	return out
}

func defaultRoute(gw net.IP) *types.Route {
	dst := net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}
	if gw.To4() == nil {
		dst = net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
	}
	return &types.Route{Dst: dst, GW: gw}
}
