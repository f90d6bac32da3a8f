// Package netstatus builds the k8s.v1.cni.cncf.io/network-status entries of
// a pod from its attachments' CNI results, with the keys the reference
// implementation writes (name, interface, ips, mac, mtu, default, dns,
// gateway, device-info).
package netstatus

import (
	"encoding/json"
	"net"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// Entry is one element of the network-status annotation.
type Entry struct {
	Name       string          `json:"name"`
	Interface  string          `json:"interface,omitempty"`
	IPs        []string        `json:"ips,omitempty"`
	Mac        string          `json:"mac,omitempty"`
	Mtu        int             `json:"mtu,omitempty"`
	Default    bool            `json:"default,omitempty"`
	DNS        DNS             `json:"dns"`
	DeviceInfo json.RawMessage `json:"device-info,omitempty"`
	Gateway    []string        `json:"gateway,omitempty"`
}

// DNS mirrors the CNI result's dns object.
type DNS struct {
	Nameservers []string `json:"nameservers,omitempty"`
	Domain      string   `json:"domain,omitempty"`
	Search      []string `json:"search,omitempty"`
	Options     []string `json:"options,omitempty"`
}

// Source is one attachment's outcome.
type Source struct {
	Name    string
	IfName  string
	Default bool
	Result  types.Result
	// DeviceInfo is the attachment's device-info file content (NPWG §A.9).
	DeviceInfo json.RawMessage
}

// Build returns the entries of every attachment, in order. An attachment
// whose result has several sandbox interfaces yields one entry for each.
func Build(sources []Source) ([]Entry, error) {
	var out []Entry
	for _, s := range sources {
		entries, err := fromResult(s)
		if err != nil {
			return nil, err
		}
		out = append(out, entries...)
	}
	return out, nil
}

// Marshal encodes entries as the annotation value.
func Marshal(entries []Entry) (string, error) {
	b, err := json.MarshalIndent(entries, "", "    ")
	return string(b), err
}

func fromResult(s Source) ([]Entry, error) {
	base := Entry{Name: s.Name, Interface: s.IfName, Default: s.Default, DeviceInfo: s.DeviceInfo}
	if s.Result == nil {
		return []Entry{base}, nil
	}
	res, err := current.NewResultFromResult(s.Result)
	if err != nil {
		return nil, err
	}
	base.DNS = DNS{
		Nameservers: res.DNS.Nameservers, Domain: res.DNS.Domain,
		Search: res.DNS.Search, Options: res.DNS.Options,
	}
	base.Gateway = defaultGateways(res)
	var out []Entry
	for i, iface := range res.Interfaces {
		if iface.Sandbox == "" {
			continue
		}
		e := base
		e.Interface, e.Mac, e.Mtu = iface.Name, iface.Mac, iface.Mtu
		e.IPs = ipsOf(res, func(ip *current.IPConfig) bool {
			return ip.Interface != nil && *ip.Interface == i
		})
		out = append(out, e)
	}
	if len(out) == 0 {
		// No sandbox interface (older results, IPAM-style results): the
		// addresses without an interface index belong to CNI_IFNAME.
		base.IPs = ipsOf(res, func(ip *current.IPConfig) bool {
			return ip.Interface == nil || *ip.Interface < 0
		})
		out = append(out, base)
	}
	return out, nil
}

func ipsOf(res *current.Result, match func(*current.IPConfig) bool) []string {
	var ips []string
	for _, ip := range res.IPs {
		if match(ip) {
			ips = append(ips, ip.Address.IP.String())
		}
	}
	return ips
}

// defaultGateways lists the gateways of the result's default routes; a
// default route without "gw" uses the gateway of the address of its family
// (CNI SPEC: routes[].gw defaults to the ips[].gateway).
func defaultGateways(res *current.Result) []string {
	var gws []string
	for _, r := range res.Routes {
		if !isDefault(r.Dst) {
			continue
		}
		gw := r.GW
		if gw == nil {
			gw = gatewayOfFamily(res, r.Dst.IP.To4() != nil)
		}
		if gw != nil {
			gws = append(gws, gw.String())
		}
	}
	return gws
}

func gatewayOfFamily(res *current.Result, v4 bool) net.IP {
	for _, ip := range res.IPs {
		if ip.Gateway != nil && (ip.Gateway.To4() != nil) == v4 {
			return ip.Gateway
		}
	}
	return nil
}

func isDefault(dst net.IPNet) bool {
	ones, _ := dst.Mask.Size()
	return ones == 0 && dst.IP.IsUnspecified()
}
