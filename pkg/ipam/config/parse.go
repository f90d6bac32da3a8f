package config

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/pkg/fielderr"
	"github.com/plexus-cni/plexus/pkg/ipam/alloc"
)

// wbRange is one Whereabouts range: the top level or an ipRanges entry.
type wbRange struct {
	Range      string   `json:"range"`
	RangeStart string   `json:"range_start"`
	RangeEnd   string   `json:"range_end"`
	Exclude    []string `json:"exclude"`
	Gateway    string   `json:"gateway"`
}

// hlRange is one host-local range.
type hlRange struct {
	Subnet     string `json:"subnet"`
	RangeStart string `json:"rangeStart"`
	RangeEnd   string `json:"rangeEnd"`
	Gateway    string `json:"gateway"`
}

// rawIPAM is the "ipam" object after the configuration_path merge.
type rawIPAM struct {
	Type string `json:"type"`
	wbRange
	IPRanges    []wbRange   `json:"ipRanges"`
	Ranges      [][]hlRange `json:"ranges"`
	Subnet      string      `json:"subnet"` // deprecated host-local keys
	RangeStartH string      `json:"rangeStart"`
	RangeEndH   string      `json:"rangeEnd"`
	NetworkName string      `json:"network_name"`
	Overlapping *bool       `json:"enable_overlapping_ranges"`
	Sticky      bool        `json:"sticky"`
	Kubernetes  struct {
		Kubeconfig string `json:"kubeconfig"`
		Namespace  string `json:"namespace"`
	} `json:"kubernetes"`
	LogFile        string         `json:"log_file"`
	LogLevel       string         `json:"log_level"`
	EtcdHost       string         `json:"etcd_host"`
	EtcdUsername   string         `json:"etcd_username"`
	EtcdPassword   string         `json:"etcd_password"`
	EtcdKeyFile    string         `json:"etcd_key_file"`
	EtcdCertFile   string         `json:"etcd_cert_file"`
	EtcdCACertFile string         `json:"etcd_ca_cert_file"`
	Routes         []*types.Route `json:"routes"`
	DNS            types.DNS      `json:"dns"`
}

func parseIPAM(merged json.RawMessage) (*Conf, error) {
	if err := validate(merged); err != nil {
		return nil, err
	}
	var raw rawIPAM
	if err := json.Unmarshal(merged, &raw); err != nil {
		return nil, fielderr.New("ipam", "", "cannot decode: %v", err)
	}
	if raw.Type != TypePlexus && raw.Type != TypeWhereabouts {
		return nil, fielderr.New("ipam.type", raw.Type, "want %q", TypePlexus)
	}
	c := &Conf{
		NetworkName:       raw.NetworkName,
		OverlappingRanges: raw.Overlapping == nil || *raw.Overlapping,
		Sticky:            raw.Sticky,
		Routes:            raw.Routes,
		DNS:               raw.DNS,
		Kubeconfig:        raw.Kubernetes.Kubeconfig,
		Namespace:         raw.Kubernetes.Namespace,
		LogFile:           raw.LogFile,
		LogLevel:          raw.LogLevel,
	}
	if raw.EtcdHost != "" {
		tls := raw.EtcdCertFile != "" || raw.EtcdCACertFile != ""
		c.Etcd = &Etcd{Endpoints: EtcdEndpoints(raw.EtcdHost, tls), Username: raw.EtcdUsername,
			Password: raw.EtcdPassword, KeyFile: raw.EtcdKeyFile, CertFile: raw.EtcdCertFile, CACertFile: raw.EtcdCACertFile}
	}
	gw, err := optAddr("ipam.gateway", raw.Gateway)
	if err != nil {
		return nil, err
	}
	if c.Slots, err = slots(raw, gw); err != nil {
		return nil, err
	}
	return c, nil
}

// slots builds the slots in order: range, ipRanges, the deprecated
// host-local subnet, host-local ranges.
func slots(raw rawIPAM, gw netip.Addr) ([]Slot, error) {
	var out []Slot
	add := func(r *alloc.Range, err error) error {
		if err == nil {
			out = append(out, Slot{Ranges: []*alloc.Range{r}})
		}
		return err
	}
	if raw.Range != "" {
		if err := add(whereaboutsRange("ipam", raw.wbRange, gw)); err != nil {
			return nil, err
		}
	}
	for i, e := range raw.IPRanges {
		if err := add(whereaboutsRange(fmt.Sprintf("ipam.ipRanges[%d]", i), e, gw)); err != nil {
			return nil, err
		}
	}
	if raw.Subnet != "" {
		// The top-level gateway serves the ranges of its family.
		h := hlRange{Subnet: raw.Subnet, RangeStart: raw.RangeStartH, RangeEnd: raw.RangeEndH}
		if err := add(hostLocalRange("ipam", h, gw)); err != nil {
			return nil, err
		}
	}
	for i, set := range raw.Ranges {
		var s Slot
		for j, h := range set {
			r, err := hostLocalRange(fmt.Sprintf("ipam.ranges[%d][%d]", i, j), h, netip.Addr{})
			if err != nil {
				return nil, err
			}
			s.Ranges = append(s.Ranges, r)
		}
		if len(s.Ranges) == 0 {
			return nil, fielderr.New(fmt.Sprintf("ipam.ranges[%d]", i), "", "empty range set")
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fielderr.New("ipam.range", "", "is required (or ipRanges, or host-local ranges)")
	}
	return out, nil
}

// whereaboutsRange builds a range from "CIDR" or "first-last/prefix" with
// range_start, range_end and exclude. gw applies when the entry has no
// gateway of its own and is of the gateway's family.
func whereaboutsRange(field string, e wbRange, gw netip.Addr) (*alloc.Range, error) {
	subnet, first, last, err := parseRangeKey(field+".range", e.Range)
	if err != nil {
		return nil, err
	}
	start, err := optAddr(field+".range_start", e.RangeStart)
	if err != nil {
		return nil, err
	}
	end, err := optAddr(field+".range_end", e.RangeEnd)
	if err != nil {
		return nil, err
	}
	if first, err = narrow(field+".range_start", true, start, first, last); err != nil {
		return nil, err
	}
	if last, err = narrow(field+".range_end", false, end, first, last); err != nil {
		return nil, err
	}
	exclude, err := excludes(field+".exclude", e.Exclude)
	if err != nil {
		return nil, err
	}
	if own, err := optAddr(field+".gateway", e.Gateway); err != nil {
		return nil, err
	} else if own.IsValid() {
		gw = own
	}
	if gw.IsValid() && gw.BitLen() != subnet.Addr().BitLen() {
		gw = netip.Addr{}
	}
	r, err := alloc.NewRange(subnet, first, last, gw, exclude)
	if err != nil {
		return nil, fielderr.New(field+".range", e.Range, "%v", err)
	}
	return r, nil
}

// narrow applies range_start (or range_end) a to [first, last]: it must lie
// inside them.
func narrow(field string, isStart bool, a, first, last netip.Addr) (netip.Addr, error) {
	if !a.IsValid() {
		if isStart {
			return first, nil
		}
		return last, nil
	}
	if a.BitLen() != first.BitLen() || a.Less(first) || last.Less(a) {
		return netip.Addr{}, fielderr.New(field, a.String(), "outside the range %s-%s", first, last)
	}
	return a, nil
}

// parseRangeKey parses "CIDR" (host bits allowed) or "first-last/prefix",
// where last carries the prefix length.
func parseRangeKey(field, s string) (subnet netip.Prefix, first, last netip.Addr, err error) {
	lo, cidr, dashed := strings.Cut(s, "-")
	if !dashed {
		cidr = s
	}
	p, perr := netip.ParsePrefix(strings.TrimSpace(cidr))
	if perr != nil || p.Addr().Zone() != "" {
		return subnet, first, last, fielderr.New(field, s, "not a CIDR or first-last/prefix range")
	}
	subnet = unmapPrefix(p).Masked()
	first, last = subnet.Addr(), alloc.LastAddr(subnet)
	if !dashed {
		return subnet, first, last, nil
	}
	first, perr = netip.ParseAddr(strings.TrimSpace(lo))
	if perr != nil {
		return subnet, first, last, fielderr.New(field, s, "first address %q is not an IP address", lo)
	}
	first, last = first.Unmap(), unmapPrefix(p).Addr()
	if !subnet.Contains(first) {
		return subnet, first, last, fielderr.New(field, s, "first address %s is outside %s", first, subnet)
	}
	if last.Less(first) {
		return subnet, first, last, fielderr.New(field, s, "last address %s is before first address %s", last, first)
	}
	return subnet, first, last, nil
}

// hostLocalRange builds a host-local range {subnet, rangeStart, rangeEnd,
// gateway}; without a gateway of its own, shared (the top-level gateway)
// applies if it is of the subnet's family.
func hostLocalRange(field string, h hlRange, shared netip.Addr) (*alloc.Range, error) {
	p, err := netip.ParsePrefix(h.Subnet)
	if err != nil {
		return nil, fielderr.New(field+".subnet", h.Subnet, "not a CIDR")
	}
	subnet := unmapPrefix(p).Masked()
	start, err := optAddr(field+".rangeStart", h.RangeStart)
	if err != nil {
		return nil, err
	}
	end, err := optAddr(field+".rangeEnd", h.RangeEnd)
	if err != nil {
		return nil, err
	}
	first, last := subnet.Addr(), alloc.LastAddr(subnet)
	if first, err = narrow(field+".rangeStart", true, start, first, last); err != nil {
		return nil, err
	}
	if last, err = narrow(field+".rangeEnd", false, end, first, last); err != nil {
		return nil, err
	}
	gw, err := optAddr(field+".gateway", h.Gateway)
	if err != nil {
		return nil, err
	}
	if gw.IsValid() && gw.BitLen() != subnet.Addr().BitLen() {
		return nil, fielderr.New(field+".gateway", h.Gateway, "not of subnet %s's address family", subnet)
	}
	if !gw.IsValid() && shared.BitLen() == subnet.Addr().BitLen() {
		gw = shared
	}
	r, err := alloc.NewRange(subnet, first, last, gw, nil)
	if err != nil {
		return nil, fielderr.New(field+".subnet", h.Subnet, "%v", err)
	}
	return r, nil
}

// excludes parses CIDRs or bare addresses (a bare address is a /32 or /128).
func excludes(field string, in []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(in))
	for i, s := range in {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, unmapPrefix(p).Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fielderr.New(fmt.Sprintf("%s[%d]", field, i), s, "not a CIDR or an IP address")
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func optAddr(field, s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fielderr.New(field, s, "not an IP address")
	}
	return a.Unmap(), nil
}

func unmapPrefix(p netip.Prefix) netip.Prefix {
	if !p.Addr().Is4In6() || p.Bits() < 96 {
		return p
	}
	return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
}

// assignRequested gives each requested address to the first slot without
// one whose range holds it, and checks it may be handed out.
func (c *Conf) assignRequested(field string, want []string) error {
	for i, s := range want {
		f := fmt.Sprintf("%s[%d]", field, i)
		a, bits, err := parseRequested(f, s)
		if err != nil {
			return err
		}
		if err := c.assignOne(f, s, a, bits); err != nil {
			return err
		}
	}
	return nil
}

func parseRequested(field, s string) (netip.Addr, int, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Addr().Unmap(), p.Bits(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, 0, fielderr.New(field, s, "not an IP address (optionally with /prefix)")
	}
	return a.Unmap(), -1, nil
}

func (c *Conf) assignOne(field, s string, a netip.Addr, bits int) error {
	for si := range c.Slots {
		slot := &c.Slots[si]
		if slot.Want.IsValid() {
			continue
		}
		for _, r := range slot.Ranges {
			if !r.Subnet.Contains(a) {
				continue
			}
			if bits >= 0 && bits != r.Subnet.Bits() {
				return fielderr.New(field, s, "prefix length differs from the range %s", r.Subnet)
			}
			if err := r.Check(a); err != nil {
				return fielderr.New(field, s, "cannot be requested: %v", err)
			}
			slot.Want = a
			return nil
		}
	}
	return fielderr.New(field, s, "not inside any configured range (or more addresses requested than ranges)")
}
