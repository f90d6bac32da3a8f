package nodesim

import (
	"encoding/json"
	"fmt"
	"net/netip"
)

// Route is one route of a pod's main routing table.
type Route struct {
	// Family is 4 or 6.
	Family int
	// Dst is "default" or a prefix.
	Dst string
	// Gateway is empty for on-link routes.
	Gateway string
	// Dev is the output interface.
	Dev string
}

// ipLink is the subset of `ip -j link` output the package reads.
type ipLink struct {
	IfName   string   `json:"ifname"`
	Address  string   `json:"address"`
	AddrInfo []ipAddr `json:"addr_info"`
	// From `ip -d -j link`.
	LinkIndex   int  `json:"link_index"`
	LinkNetNSID *int `json:"link_netnsid"`
	LinkInfo    struct {
		Kind string `json:"info_kind"`
	} `json:"linkinfo"`
}

// LinkDetail describes one interface of a pod and its lower device.
type LinkDetail struct {
	// Kind is the link type ("macvlan", "veth", …), empty for plain devices.
	Kind string
	// LowerIndex is the ifindex of the lower device (0 if there is none),
	// in the namespace LowerNetNSID names, or the pod's when that is nil.
	LowerIndex   int
	LowerNetNSID *int
}

type ipAddr struct {
	Local     string `json:"local"`
	PrefixLen int    `json:"prefixlen"`
	Scope     string `json:"scope"`
}

type ipRoute struct {
	Dst     string `json:"dst"`
	Gateway string `json:"gateway"`
	Dev     string `json:"dev"`
}

// Exec runs a command inside the pod's network namespace and returns its
// stdout; stderr is part of the error.
func (p *Pod) Exec(args ...string) (string, error) {
	return nsExecCommand(p.NetNSName, args...)
}

// Ping sends one echo request from the pod and waits (bounded) for the reply.
func (p *Pod) Ping(addr string) error {
	return ping(p.NetNSName, addr)
}

// ipJSON runs `ip -j <args>` in the pod and decodes the output into v.
func (p *Pod) ipJSON(v any, args ...string) error {
	out, err := p.Exec(append([]string{"ip", "-j"}, args...)...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("decode ip %v output: %w", args, err)
	}
	return nil
}

// Links returns the names of the interfaces inside the pod, lo included.
func (p *Pod) Links() ([]string, error) {
	var links []ipLink
	if err := p.ipJSON(&links, "link", "show"); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(links))
	for _, l := range links {
		names = append(names, l.IfName)
	}
	return names, nil
}

// Addrs returns the global-scope addresses of ifname (link-local and host
// addresses are left out).
func (p *Pod) Addrs(ifname string) ([]netip.Prefix, error) {
	var links []ipLink
	if err := p.ipJSON(&links, "addr", "show", "dev", ifname); err != nil {
		return nil, err
	}
	var addrs []netip.Prefix
	for _, l := range links {
		for _, a := range l.AddrInfo {
			if a.Scope != "global" {
				continue
			}
			addr, err := netip.ParseAddr(a.Local)
			if err != nil {
				return nil, fmt.Errorf("parse address of %s: %w", ifname, err)
			}
			addrs = append(addrs, netip.PrefixFrom(addr, a.PrefixLen))
		}
	}
	return addrs, nil
}

// MAC returns the hardware address of ifname.
func (p *Pod) MAC(ifname string) (string, error) {
	var links []ipLink
	if err := p.ipJSON(&links, "link", "show", "dev", ifname); err != nil {
		return "", err
	}
	if len(links) != 1 {
		return "", fmt.Errorf("link %s: got %d entries", ifname, len(links))
	}
	return links[0].Address, nil
}

// Link returns the kind and the lower device of ifname.
func (p *Pod) Link(ifname string) (LinkDetail, error) {
	var links []ipLink
	if err := p.ipJSON(&links, "-d", "link", "show", "dev", ifname); err != nil {
		return LinkDetail{}, err
	}
	if len(links) != 1 {
		return LinkDetail{}, fmt.Errorf("link %s: got %d entries", ifname, len(links))
	}
	l := links[0]
	return LinkDetail{Kind: l.LinkInfo.Kind, LowerIndex: l.LinkIndex, LowerNetNSID: l.LinkNetNSID}, nil
}

// Routes returns the IPv4 and IPv6 routes of the pod's main table.
func (p *Pod) Routes() ([]Route, error) {
	var all []Route
	for _, family := range []int{4, 6} {
		var routes []ipRoute
		if err := p.ipJSON(&routes, fmt.Sprintf("-%d", family), "route", "show", "table", "main"); err != nil {
			return nil, err
		}
		for _, r := range routes {
			all = append(all, Route{Family: family, Dst: r.Dst, Gateway: r.Gateway, Dev: r.Dev})
		}
	}
	return all, nil
}

// DefaultRoutes maps interface name to gateway for the default routes of
// one address family (4 or 6); an on-link default route maps to "".
func (p *Pod) DefaultRoutes(family int) (map[string]string, error) {
	if family != 4 && family != 6 {
		return nil, fmt.Errorf("family must be 4 or 6, got %d", family)
	}
	routes, err := p.Routes()
	if err != nil {
		return nil, err
	}
	defaults := map[string]string{}
	for _, r := range routes {
		if r.Family == family && r.Dst == "default" {
			defaults[r.Dev] = r.Gateway
		}
	}
	return defaults, nil
}
