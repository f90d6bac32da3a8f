package config

import (
	"net/netip"
	"strings"
)

// Whereabouts keeps one IPPool per range and, with overlapping ranges
// enabled, one OverlappingRangeIPReservation per address. Their names are
// derived from the range's network (or the address) and network_name;
// plexus uses the same names for its pools (plexusctl ipam pools) and to
// find the Whereabouts objects of a configuration when importing them.

// whereaboutsSpelling writes s with ':' and '/' as '-' (object names
// allow neither); a trailing ':' gets a "0" first, as Whereabouts does.
func whereaboutsSpelling(s string) string {
	if strings.HasSuffix(s, ":") {
		s += "0"
	}
	return strings.NewReplacer(":", "-", "/", "-").Replace(s)
}

// WhereaboutsPoolName is the name of the IPPool Whereabouts keeps for a
// range of subnet: the masked subnet in CIDR notation, spelled with '-',
// after network_name and '-' when that is set ("10.0.0.0-24",
// "blue-2001-db8---64").
func WhereaboutsPoolName(networkName string, subnet netip.Prefix) string {
	name := whereaboutsSpelling(subnet.Masked().String())
	if networkName != "" {
		name = networkName + "-" + name
	}
	return name
}

// WhereaboutsReservationName is the name of the
// OverlappingRangeIPReservation of addr ("10.0.0.5", "blue-2001-db8--5").
func WhereaboutsReservationName(networkName string, addr netip.Addr) string {
	name := whereaboutsSpelling(addr.String())
	if networkName != "" {
		name = networkName + "-" + name
	}
	return name
}
