// The reference dhcp plugin whose daemon plexusd runs and plexus's image
// ships (make build: bin/dhcp). A module of its own, apart from hack/tools
// (the test bed's reference plugins, v1.9.1): v1.10.0 is the first release
// whose daemon sends DHCPRELEASE from the leased address
// (containernetworking/plugins#1278; from 0.0.0.0, servers such as dnsmasq
// drop it and a deleted pod's lease only expires), and moving hack/tools to
// it would move dependencies it shares with the Kubernetes builds.
module github.com/plexus-cni/plexus/hack/dhcp

go 1.26.8

tool github.com/containernetworking/plugins/plugins/ipam/dhcp

require (
	github.com/containernetworking/cni v1.3.1 // indirect
	github.com/containernetworking/plugins v1.10.0 // indirect
	github.com/coreos/go-systemd/v22 v22.7.0 // indirect
	github.com/insomniacslk/dhcp v0.0.0-20260719225207-c76316d4aa82 // indirect
	github.com/josharian/native v1.1.0 // indirect
	github.com/mdlayher/packet v1.1.2 // indirect
	github.com/mdlayher/socket v0.6.1 // indirect
	github.com/pierrec/lz4/v4 v4.1.21 // indirect
	github.com/pkg/errors v0.9.1 // indirect
	github.com/u-root/uio v0.0.0-20240224005618-d2acac8f3701 // indirect
	github.com/vishvananda/netlink v1.3.1 // indirect
	github.com/vishvananda/netns v0.0.5 // indirect
	golang.org/x/net v0.59.0 // indirect
	golang.org/x/sync v0.24.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
