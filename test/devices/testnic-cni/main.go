// Command testnic-cni is a test CNI plugin standing in for SR-IOV CNI: it
// moves the host interface that the meta-plugin names by "deviceID" into the
// container as CNI_IFNAME, and back on DEL.
//
// ADD fails with CNI error 7, naming the key and its value, unless the
// configuration has a non-empty top-level "deviceID", a "pciBusID" equal to
// it and a "runtimeConfig.deviceID" capability argument equal to it: this is
// how a test proves that the meta-plugin injected all three. An "ipam"
// section is run as a delegate and applied to the interface. When
// runtimeConfig.CNIDeviceInfoFile names an existing file, ADD adds
// "testnic-ifname": CNI_IFNAME to its top-level object.
//
// DEL moves the interface back, renamed to deviceID; it succeeds when the
// namespace or the interface is gone. CHECK fails unless the interface is
// in the container. The plugin declares no capabilities itself: the NAD
// declares "deviceID" and "CNIDeviceInfoFile".
package main

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/containernetworking/plugins/pkg/ipam"
	"github.com/containernetworking/plugins/pkg/ns"
)

func init() {
	// Namespace switches apply to one OS thread: keep main on its own.
	runtime.LockOSThread()
}

func main() {
	skel.PluginMainFuncs(skel.CNIFuncs{Add: cmdAdd, Del: cmdDel, Check: cmdCheck, Status: cmdStatus},
		version.PluginSupports("0.3.1", "0.4.0", "1.0.0", "1.1.0"), "testnic-cni: test stand-in for SR-IOV CNI")
}

// cmdAdd moves the device in, applies IPAM and updates the device-info file;
// any failure undoes what was done.
func cmdAdd(args *skel.CmdArgs) error {
	conf, err := loadConf(args.StdinData)
	if err != nil {
		return err
	}
	if err := validateDevice(conf); err != nil {
		return err
	}
	netns, err := ns.GetNS(args.Netns)
	if err != nil {
		return fmt.Errorf("open netns %q: %w", args.Netns, err)
	}
	defer netns.Close()
	iface, err := moveIn(netns, conf.DeviceID, args.IfName)
	if err != nil {
		return err
	}
	result, err := configure(conf, args, netns, iface)
	if err == nil {
		err = annotateDeviceInfo(conf.RuntimeConfig.DeviceInfoFile, args.IfName)
	}
	if err != nil {
		return errors.Join(err, releaseIPAM(conf, args), moveOut(netns, args.IfName, conf.DeviceID))
	}
	return types.PrintResult(result, conf.CNIVersion)
}

// configure builds the result for iface and, with an ipam section, runs the
// IPAM delegate and applies its addresses and routes in the container.
func configure(conf *netConf, args *skel.CmdArgs, netns ns.NetNS, iface *current.Interface) (*current.Result, error) {
	result := &current.Result{CNIVersion: current.ImplementedSpecVersion, Interfaces: []*current.Interface{iface}}
	if conf.IPAM.Type == "" {
		return result, nil
	}
	r, err := ipam.ExecAdd(conf.IPAM.Type, args.StdinData)
	if err != nil {
		return nil, fmt.Errorf("IPAM %q ADD: %w", conf.IPAM.Type, err)
	}
	ipamResult, err := current.NewResultFromResult(r)
	if err != nil {
		return nil, fmt.Errorf("IPAM %q result: %w", conf.IPAM.Type, err)
	}
	if len(ipamResult.IPs) == 0 {
		return nil, fmt.Errorf("IPAM %q returned no addresses", conf.IPAM.Type)
	}
	for _, ipc := range ipamResult.IPs {
		ipc.Interface = current.Int(0)
	}
	result.IPs, result.Routes, result.DNS = ipamResult.IPs, ipamResult.Routes, ipamResult.DNS
	err = netns.Do(func(ns.NetNS) error { return ipam.ConfigureIface(args.IfName, result) })
	if err != nil {
		return nil, fmt.Errorf("configure %q: %w", args.IfName, err)
	}
	return result, nil
}

// cmdDel releases the addresses and moves the device back to the host.
func cmdDel(args *skel.CmdArgs) error {
	conf, err := loadConf(args.StdinData)
	if err != nil {
		return err
	}
	return errors.Join(releaseIPAM(conf, args), releaseDevice(conf, args))
}

// releaseIPAM runs the IPAM delegate's DEL when there is an ipam section.
func releaseIPAM(conf *netConf, args *skel.CmdArgs) error {
	if conf.IPAM.Type == "" {
		return nil
	}
	if err := ipam.ExecDel(conf.IPAM.Type, args.StdinData); err != nil {
		return fmt.Errorf("IPAM %q DEL: %w", conf.IPAM.Type, err)
	}
	return nil
}

// releaseDevice moves the interface back to the host as deviceID; a missing
// namespace or interface means there is nothing to do.
func releaseDevice(conf *netConf, args *skel.CmdArgs) error {
	if args.Netns == "" {
		return nil
	}
	netns, err := ns.GetNS(args.Netns)
	var gone ns.NSPathNotExistErr
	if errors.As(err, &gone) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open netns %q: %w", args.Netns, err)
	}
	defer netns.Close()
	link, err := linkIn(netns, args.IfName)
	if err != nil || link == nil {
		return err
	}
	claimed := claimedDevice(link)
	if claimed == "" {
		return nil // not moved in by this plugin (e.g. a failed ADD's DEL)
	}
	if err := matchClaim(conf, args.IfName, claimed); err != nil {
		return err
	}
	return moveOut(netns, args.IfName, conf.DeviceID)
}

// cmdCheck fails unless CNI_IFNAME is in the container and holds deviceID.
func cmdCheck(args *skel.CmdArgs) error {
	conf, err := loadConf(args.StdinData)
	if err != nil {
		return err
	}
	netns, err := ns.GetNS(args.Netns)
	if err != nil {
		return fmt.Errorf("open netns %q: %w", args.Netns, err)
	}
	defer netns.Close()
	link, err := linkIn(netns, args.IfName)
	if err != nil {
		return err
	}
	if link == nil {
		return fmt.Errorf("interface %q is not in %s", args.IfName, args.Netns)
	}
	return matchClaim(conf, args.IfName, claimedDevice(link))
}

// matchClaim checks that the configuration's deviceID is the device the
// interface ifName holds.
func matchClaim(conf *netConf, ifName, claimed string) error {
	if err := requireDeviceID(conf); err != nil {
		return err
	}
	if claimed != conf.DeviceID {
		return types.NewError(types.ErrInvalidNetworkConfig,
			fmt.Sprintf("config key \"deviceID\" is %q, but interface %q holds device %q", conf.DeviceID, ifName, claimed), "")
	}
	return nil
}

// cmdStatus forwards STATUS to the IPAM delegate, if any.
func cmdStatus(args *skel.CmdArgs) error {
	conf, err := loadConf(args.StdinData)
	if err != nil {
		return err
	}
	if conf.IPAM.Type == "" {
		return nil
	}
	if err := ipam.ExecStatus(conf.IPAM.Type, args.StdinData); err != nil {
		return fmt.Errorf("IPAM %q STATUS: %w", conf.IPAM.Type, err)
	}
	return nil
}
