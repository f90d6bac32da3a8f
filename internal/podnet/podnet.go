// Package podnet does the few things plexus itself changes or inspects inside
// a pod's network namespace: whether an interface exists (CHECK), and moving
// the default route to the attachment that asked for it (default-route).
// Everything else in the namespace is the delegates' work. Netlink reads go
// through the plugins' netlinksafe wrappers, which retry a dump the kernel
// interrupted instead of failing or returning it incomplete.
package podnet

import (
	"errors"
	"fmt"
	"net"

	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// LinkExists reports an error unless ifname exists in the namespace at path.
func LinkExists(netnsPath, ifname string) error {
	return ns.WithNetNSPath(netnsPath, func(ns.NetNS) error {
		link, err := netlinksafe.LinkByName(ifname)
		if err != nil {
			return fmt.Errorf("interface %s not found in %s: %w", ifname, netnsPath, err)
		}
		if link.Attrs().OperState == netlink.OperDown && link.Attrs().Flags&net.FlagUp == 0 {
			return fmt.Errorf("interface %s in %s is down", ifname, netnsPath)
		}
		return nil
	})
}

// SetDefaultRoute makes ifname carry the default route of each gateway's IP
// family: other interfaces' default routes of that family are removed and
// "default via gw dev ifname" is added.
func SetDefaultRoute(netnsPath, ifname string, gateways []net.IP) error {
	return ns.WithNetNSPath(netnsPath, func(ns.NetNS) error {
		link, err := netlinksafe.LinkByName(ifname)
		if err != nil {
			return fmt.Errorf("default-route: interface %s: %w", ifname, err)
		}
		for _, gw := range gateways {
			if err := moveDefault(link, gw); err != nil {
				return fmt.Errorf("default-route via %s on %s: %w", gw, ifname, err)
			}
		}
		return nil
	})
}

// moveDefault replaces the main table's default routes of gw's family with
// one via gw on link. If the new route cannot be added, the removed ones
// are put back: a failed move leaves the routes as they were.
func moveDefault(link netlink.Link, gw net.IP) error {
	family := netlink.FAMILY_V4
	if gw.To4() == nil {
		family = netlink.FAMILY_V6
	}
	routes, err := netlinksafe.RouteList(nil, family)
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	var removed []netlink.Route
	for i := range routes {
		r := &routes[i]
		if !isDefault(r) || r.Table != unix.RT_TABLE_MAIN && r.Table != 0 {
			continue
		}
		if err := netlink.RouteDel(r); err != nil && !errors.Is(err, unix.ESRCH) {
			return errors.Join(fmt.Errorf("delete default route via %s: %w", r.Gw, err), restore(removed))
		}
		removed = append(removed, *r)
	}
	err = netlink.RouteReplace(&netlink.Route{
		LinkIndex: link.Attrs().Index,
		Gw:        gw,
		Dst:       nil,
		Scope:     netlink.SCOPE_UNIVERSE,
		Family:    family,
	})
	if err != nil {
		return errors.Join(fmt.Errorf("add default route: %w", err), restore(removed))
	}
	return nil
}

// restore adds routes back after a failed move.
func restore(routes []netlink.Route) error {
	var errs []error
	for i := range routes {
		if err := netlink.RouteAdd(&routes[i]); err != nil && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, fmt.Errorf("restore default route via %s: %w", routes[i].Gw, err))
		}
	}
	return errors.Join(errs...)
}

func isDefault(r *netlink.Route) bool {
	if r.Dst == nil {
		return true
	}
	ones, _ := r.Dst.Mask.Size()
	return ones == 0
}
