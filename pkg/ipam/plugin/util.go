package plugin

import (
	"encoding/json"
	"net"
	"net/netip"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func netipToIPNet(p netip.Prefix) *net.IPNet {
	bits := p.Addr().BitLen()
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), bits)}
}

// parsePrevResult converts the prevResult to the current result version.
func parsePrevResult(nc *types.NetConf) (*current.Result, error) {
	if err := version.ParsePrevResult(nc); err != nil {
		return nil, err
	}
	return current.NewResultFromResult(nc.PrevResult)
}
