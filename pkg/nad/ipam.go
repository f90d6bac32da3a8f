package nad

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	"github.com/plexus-cni/plexus/pkg/fielderr"
)

// IPAM plugin types whose configuration ValidateIPAM understands.
const (
	IPAMHostLocal   = "host-local"
	IPAMStatic      = "static"
	IPAMWhereabouts = "whereabouts"
	IPAMPlexus      = "plexus-ipam"
	IPAMDHCP        = "dhcp"
)

// ValidateIPAM checks an "ipam" section. It must be a JSON object; when its
// type is host-local, static, whereabouts or plexus-ipam the addresses,
// ranges and routes are checked too. field names the section in errors,
// e.g. "spec.config.ipam".
func ValidateIPAM(ipam json.RawMessage, field string) error {
	o, err := newObject(ipam, field)
	if err != nil {
		return err
	}
	typ, err := o.str("type")
	if err != nil {
		return err
	}
	switch typ {
	case IPAMHostLocal:
		return validateHostLocal(o)
	case IPAMStatic:
		return validateStatic(o)
	case IPAMWhereabouts, IPAMPlexus:
		return validateWhereabouts(o)
	}
	return nil
}

func validateHostLocal(o object) error {
	if err := checkHostLocalRange(o, rangeRules{ownGateway: true}); err != nil {
		return err
	}
	if err := checkRangeSets(o, rangeRules{}); err != nil {
		return err
	}
	return checkRoutes(o)
}

// rangeRules say how one host-local range is checked.
type rangeRules struct {
	// entry: a "ranges" entry, whose subnet is required.
	entry bool
	// ownGateway: the gateway belongs to this range, so it must be of its
	// family (a plexus-ipam top-level gateway serves the ranges of its
	// family only).
	ownGateway bool
	// anySize: /31, /32, /127 and /128 can be allocated from (plexus-ipam).
	anySize bool
}

// checkRangeSets checks host-local's "ranges": a list of non-empty sets
// of range objects.
func checkRangeSets(o object, rules rangeRules) error {
	var sets [][]json.RawMessage
	if err := o.decode("ranges", "an array of arrays of range objects", &sets); err != nil {
		return err
	}
	rules.entry, rules.ownGateway = true, true
	for i, set := range sets {
		if len(set) == 0 {
			return fielderr.New(fmt.Sprintf("%s[%d]", o.sub("ranges"), i), "", "empty range set")
		}
		for j, raw := range set {
			r, err := newObject(raw, fmt.Sprintf("%s[%d][%d]", o.sub("ranges"), i, j))
			if err != nil {
				return err
			}
			if err := checkHostLocalRange(r, rules); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkHostLocalRange checks subnet, rangeStart, rangeEnd and gateway of
// one host-local range (or of the legacy top-level keys).
func checkHostLocalRange(o object, rules rangeRules) error {
	subnet, err := prefixKey(o, "subnet", rules.entry)
	if err != nil {
		return err
	}
	if !rules.anySize && subnet.IsValid() && subnet.Bits() > subnet.Addr().BitLen()-2 {
		return fielderr.New(o.sub("subnet"), subnet.String(), "network too small to allocate from")
	}
	start, err := addrKey(o, "rangeStart")
	if err != nil {
		return err
	}
	end, err := addrKey(o, "rangeEnd")
	if err != nil {
		return err
	}
	gw, err := addrKey(o, "gateway")
	if err != nil {
		return err
	}
	if !subnet.IsValid() {
		return nil
	}
	if rules.ownGateway && gw.IsValid() && gw.BitLen() != subnet.Addr().BitLen() {
		return fielderr.New(o.sub("gateway"), gw.String(), "not of subnet %s's address family", subnet)
	}
	bounds := span{lo: subnet.Masked().Addr(), hi: lastAddr(subnet)}
	return checkStartEnd(o, "rangeStart", "rangeEnd", start, end, bounds, "subnet "+subnet.String())
}

func validateStatic(o object) error {
	addrs, err := o.objects("addresses")
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if _, err := prefixKey(a, "address", true); err != nil {
			return err
		}
		if _, err := addrKey(a, "gateway"); err != nil {
			return err
		}
	}
	if _, err := addrKey(o, "gateway"); err != nil {
		return err
	}
	return checkRoutes(o)
}

func checkRoutes(o object) error {
	routes, err := o.objects("routes")
	if err != nil {
		return err
	}
	for _, r := range routes {
		if _, err := prefixKey(r, "dst", true); err != nil {
			return err
		}
		if _, err := addrKey(r, "gw"); err != nil {
			return err
		}
	}
	return nil
}

// prefixKey parses key as a CIDR; required reports a missing key.
func prefixKey(o object, key string, required bool) (netip.Prefix, error) {
	s, err := o.str(key)
	if err != nil || s == "" {
		if err == nil && required {
			err = fielderr.New(o.sub(key), "", "is required")
		}
		return netip.Prefix{}, err
	}
	p, perr := netip.ParsePrefix(s)
	if perr != nil || p.Addr().Zone() != "" {
		return netip.Prefix{}, fielderr.New(o.sub(key), s, "not a CIDR (like 192.0.2.0/24)")
	}
	return unmapPrefix(p), nil
}

// addrKey parses an optional key as an IP address.
func addrKey(o object, key string) (netip.Addr, error) {
	s, err := o.str(key)
	if err != nil || s == "" {
		return netip.Addr{}, err
	}
	a, perr := netip.ParseAddr(s)
	if perr != nil || a.Zone() != "" {
		return netip.Addr{}, fielderr.New(o.sub(key), s, "not an IP address")
	}
	return a.Unmap(), nil
}

// span is an inclusive address range.
type span struct{ lo, hi netip.Addr }

func (s span) contains(a netip.Addr) bool {
	return a.BitLen() == s.lo.BitLen() && s.lo.Compare(a) <= 0 && a.Compare(s.hi) <= 0
}

// checkStartEnd checks that optional start and end lie inside bounds and
// are in order.
func checkStartEnd(o object, startKey, endKey string, start, end netip.Addr, bounds span, what string) error {
	if start.IsValid() && !bounds.contains(start) {
		return fielderr.New(o.sub(startKey), start.String(), "outside %s", what)
	}
	if end.IsValid() && !bounds.contains(end) {
		return fielderr.New(o.sub(endKey), end.String(), "outside %s", what)
	}
	if start.IsValid() && end.IsValid() && end.Less(start) {
		return fielderr.New(o.sub(endKey), end.String(), "before %s %s", startKey, start)
	}
	return nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func unmapPrefix(p netip.Prefix) netip.Prefix {
	if !p.Addr().Is4In6() || p.Bits() < 96 {
		return p
	}
	return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
}

// isIPOrCIDR reports whether s is an IP address or a CIDR.
func isIPOrCIDR(s string) bool {
	if strings.Contains(s, "/") {
		_, err := netip.ParsePrefix(s)
		return err == nil
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}
