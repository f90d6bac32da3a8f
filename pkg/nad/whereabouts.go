package nad

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode"

	"github.com/plexus-cni/plexus/pkg/fielderr"
)

// validateWhereabouts checks the whereabouts (and plexus-ipam) keys: range,
// range_start, range_end, exclude, gateway, ipRanges, etcd_host and routes,
// and host-local's subnet and ranges, which plexus-ipam takes too.
func validateWhereabouts(o object) error {
	if err := checkWhereaboutsRange(o); err != nil {
		return err
	}
	if _, err := addrKey(o, "gateway"); err != nil {
		return err
	}
	ranges, err := o.objects("ipRanges")
	if err != nil {
		return err
	}
	for _, r := range ranges {
		if err := checkWhereaboutsRange(r); err != nil {
			return err
		}
	}
	if err := checkEtcdHost(o); err != nil {
		return err
	}
	if err := checkHostLocalRange(o, rangeRules{anySize: true}); err != nil {
		return err
	}
	if err := checkRangeSets(o, rangeRules{anySize: true}); err != nil {
		return err
	}
	return checkRoutes(o)
}

// checkEtcdHost checks that etcd_host, when set, names an endpoint
// ("host:port[,host:port]").
func checkEtcdHost(o object) error {
	host, err := o.str("etcd_host")
	if err != nil || host == "" {
		return err
	}
	if strings.TrimFunc(host, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) == "" {
		return fielderr.New(o.sub("etcd_host"), host, "names no endpoint (want host:port[,host:port])")
	}
	return nil
}

// checkWhereaboutsRange checks range, range_start, range_end and exclude of
// one range object.
func checkWhereaboutsRange(o object) error {
	s, err := o.str("range")
	if err != nil {
		return err
	}
	var bounds span
	if s != "" {
		if bounds, err = parseRange(s); err != nil {
			return fielderr.New(o.sub("range"), s, "%v", err)
		}
	}
	start, err := addrKey(o, "range_start")
	if err != nil {
		return err
	}
	end, err := addrKey(o, "range_end")
	if err != nil {
		return err
	}
	if s != "" {
		if err := checkStartEnd(o, "range_start", "range_end", start, end, bounds, "range "+s); err != nil {
			return err
		}
	}
	var excludes []string
	if err := o.decode("exclude", "an array of CIDRs or IP addresses", &excludes); err != nil {
		return err
	}
	for i, ex := range excludes {
		if !isIPOrCIDR(ex) {
			return fielderr.New(fmt.Sprintf("%s[%d]", o.sub("exclude"), i), ex, "not a CIDR or an IP address")
		}
	}
	return nil
}

// parseRange parses "CIDR" or "first-last/prefix" (whereabouts syntax: the
// last address carries the prefix length).
func parseRange(s string) (span, error) {
	const want = "not a CIDR (like 192.0.2.0/24) or a first-last/prefix range (like 192.0.2.10-192.0.2.50/24)"
	first, cidr, dashed := strings.Cut(s, "-")
	if !dashed {
		cidr = s
	}
	p, err := netip.ParsePrefix(cidr)
	if err != nil || p.Addr().Zone() != "" {
		return span{}, fmt.Errorf("%s", want)
	}
	p = unmapPrefix(p)
	whole := span{lo: p.Masked().Addr(), hi: lastAddr(p)}
	if !dashed {
		return whole, nil
	}
	lo, err := netip.ParseAddr(first)
	if err != nil || lo.Zone() != "" {
		return span{}, fmt.Errorf("%s", want)
	}
	lo, hi := lo.Unmap(), p.Addr()
	if !whole.contains(lo) {
		return span{}, fmt.Errorf("first address %s is outside %s", lo, p.Masked())
	}
	if hi.Less(lo) {
		return span{}, fmt.Errorf("last address %s is before first address %s", hi, lo)
	}
	return span{lo: lo, hi: hi}, nil
}
