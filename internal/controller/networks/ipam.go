package networks

import (
	"encoding/json"
	"net"

	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
)

// staticIPAM is the static plugin's "ipam" object; the field order is
// CNO's key order.
type staticIPAM struct {
	Type         string          `json:"type"`
	Routes       []staticRoute   `json:"routes,omitempty"`
	Addresses    []staticAddress `json:"addresses,omitempty"`
	DNS          *staticDNS      `json:"dns,omitempty"`
	Capabilities []string        `json:"capabilities,omitempty"`
}

type staticRoute struct {
	Dst string `json:"dst"`
	GW  string `json:"gw,omitempty"`
}

type staticAddress struct {
	Address string `json:"address"`
	Gateway string `json:"gateway,omitempty"`
}

type staticDNS struct {
	Nameservers []string `json:"nameservers,omitempty"`
	Domain      string   `json:"domain,omitempty"`
	Search      []string `json:"search,omitempty"`
}

// staticJSON renders a validated static configuration. Route
// destinations are written in network form (host bits cleared). Without
// addresses, CNO adds "capabilities": ["ips"] inside ipam so that addresses
// may come from runtimeConfig; plexus reproduces that output (libcni reads
// only the top-level capabilities, so it has no effect there).
func staticJSON(s *v1.StaticIPAMConfig) []byte {
	out := staticIPAM{Type: "static"}
	if s != nil {
		for _, r := range s.Routes {
			dst := r.Destination
			if _, n, err := net.ParseCIDR(dst); err == nil {
				dst = n.String()
			}
			out.Routes = append(out.Routes, staticRoute{Dst: dst, GW: r.Gateway})
		}
		for _, a := range s.Addresses {
			out.Addresses = append(out.Addresses, staticAddress(a))
		}
		if d := s.DNS; d != nil && (len(d.Nameservers) > 0 || d.Domain != "" || len(d.Search) > 0) {
			out.DNS = &staticDNS{Nameservers: d.Nameservers, Domain: d.Domain, Search: d.Search}
		}
	}
	if len(out.Addresses) == 0 {
		out.Capabilities = []string{"ips"}
	}
	b, _ := json.Marshal(out) // plain strings and slices always marshal
	return b
}

// plexusIPAM is plexus-ipam's "ipam" object.
type plexusIPAM struct {
	Type        string   `json:"type"`
	Range       string   `json:"range"`
	RangeStart  string   `json:"range_start,omitempty"`
	RangeEnd    string   `json:"range_end,omitempty"`
	Exclude     []string `json:"exclude,omitempty"`
	Gateway     string   `json:"gateway,omitempty"`
	NetworkName string   `json:"network_name,omitempty"`
}

func plexusIPAMJSON(p *v1.PlexusIPAMConfig) []byte {
	out := plexusIPAM{Type: "plexus-ipam"}
	if p != nil {
		out.Range, out.RangeStart, out.RangeEnd = p.Range, p.RangeStart, p.RangeEnd
		out.Exclude, out.Gateway, out.NetworkName = p.Exclude, p.Gateway, p.NetworkName
	}
	b, _ := json.Marshal(out) // plain strings and slices always marshal
	return b
}
