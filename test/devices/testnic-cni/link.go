package main

import (
	"errors"
	"fmt"
	"strings"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/netlinksafe"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
)

// aliasPrefix starts the alias of a link the plugin moved into a container;
// the device ID follows. DEL and CHECK touch only links that carry it, so a
// failed ADD's DEL never takes an interface that another plugin made.
const aliasPrefix = "plexus-testnic:"

// moveIn moves the host interface deviceID into netns, renames it ifName and
// sets it up. On failure the interface is moved back under its own name.
func moveIn(netns ns.NetNS, deviceID, ifName string) (*current.Interface, error) {
	link, err := netlinksafe.LinkByName(deviceID)
	if err != nil {
		return nil, fmt.Errorf("find host interface %q (deviceID): %w", deviceID, err)
	}
	if err := netlink.LinkSetDown(link); err != nil {
		return nil, fmt.Errorf("set host interface %q down: %w", deviceID, err)
	}
	if err := netlink.LinkSetNsFd(link, int(netns.Fd())); err != nil {
		return nil, fmt.Errorf("move %q into %s: %w", deviceID, netns.Path(), err)
	}
	iface := &current.Interface{Name: ifName, Sandbox: netns.Path()}
	err = netns.Do(func(ns.NetNS) error {
		mac, err := claim(deviceID, ifName)
		iface.Mac = mac
		return err
	})
	if err != nil {
		return nil, errors.Join(err, moveBack(netns, deviceID, ifName))
	}
	return iface, nil
}

// moveBack undoes a moveIn that failed inside the container, where the
// link may or may not have been renamed yet.
func moveBack(netns ns.NetNS, deviceID, ifName string) error {
	name := deviceID
	if link, _ := linkIn(netns, ifName); link != nil && claimedDevice(link) == deviceID {
		name = ifName
	}
	return moveOut(netns, name, deviceID)
}

// claim marks the link deviceID as the plugin's (its alias names the
// device), renames it ifName and sets it up; it returns the MAC.
func claim(deviceID, ifName string) (string, error) {
	link, err := netlinksafe.LinkByName(deviceID)
	if err != nil {
		return "", fmt.Errorf("find %q in the container: %w", deviceID, err)
	}
	if err := netlink.LinkSetAlias(link, aliasPrefix+deviceID); err != nil {
		return "", fmt.Errorf("set the alias of %q: %w", deviceID, err)
	}
	if deviceID != ifName {
		if err := netlink.LinkSetName(link, ifName); err != nil {
			return "", fmt.Errorf("rename %q to %q in the container: %w", deviceID, ifName, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return "", fmt.Errorf("set %q up in the container: %w", ifName, err)
	}
	return link.Attrs().HardwareAddr.String(), nil
}

// claimedDevice returns the device ID a link's alias names, or "" when the
// plugin did not move the link in.
func claimedDevice(link netlink.Link) string {
	id, ok := strings.CutPrefix(link.Attrs().Alias, aliasPrefix)
	if !ok {
		return ""
	}
	return id
}

// moveOut moves the interface ifName of netns back to the namespace the
// plugin runs in, named deviceID again. It is down when it arrives.
func moveOut(netns ns.NetNS, ifName, deviceID string) error {
	return netns.Do(func(hostNS ns.NetNS) error {
		link, err := netlinksafe.LinkByName(ifName)
		if err != nil {
			return fmt.Errorf("find %q in the container: %w", ifName, err)
		}
		if err := netlink.LinkSetDown(link); err != nil {
			return fmt.Errorf("set %q down in the container: %w", ifName, err)
		}
		if err := netlink.LinkSetAlias(link, ""); err != nil {
			return fmt.Errorf("clear the alias of %q: %w", ifName, err)
		}
		if ifName != deviceID {
			if err := netlink.LinkSetName(link, deviceID); err != nil {
				return fmt.Errorf("rename %q back to %q: %w", ifName, deviceID, err)
			}
		}
		if err := netlink.LinkSetNsFd(link, int(hostNS.Fd())); err != nil {
			return fmt.Errorf("move %q back to the host as %q: %w", ifName, deviceID, err)
		}
		return nil
	})
}

// linkIn looks ifName up in netns; a missing link is (nil, nil).
func linkIn(netns ns.NetNS, ifName string) (netlink.Link, error) {
	var link netlink.Link
	err := netns.Do(func(ns.NetNS) error {
		l, err := netlinksafe.LinkByName(ifName)
		var notFound netlink.LinkNotFoundError
		if errors.As(err, &notFound) {
			return nil
		}
		link = l
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("look up %q in %s: %w", ifName, netns.Path(), err)
	}
	return link, nil
}
