package dhcpd

import (
	"encoding/json"
	"strings"

	"github.com/containernetworking/cni/libcni"

	"github.com/plexus-cni/plexus/internal/cache"
	"github.com/plexus-cni/plexus/pkg/nad"
)

// IPAMType is the reference DHCP plugin's IPAM type.
const IPAMType = "dhcp"

// DefaultSocket is where the reference dhcp plugin dials its daemon unless
// its configuration names another (ipam.daemonSocketPath).
const DefaultSocket = "/run/cni/dhcp.sock"

// Uses reports whether a NAD's spec.config (a configuration or a list;
// name is the NAD's, the network name when the config has none) has a
// plugin whose IPAM is the dhcp plugin dialling socket. A config the
// meta-plugin would refuse uses nothing.
func Uses(config []byte, name, socket string) bool {
	d, err := nad.Parse(config, name)
	return err == nil && len(dhcpConfs(d.Conflist, socket)) > 0
}

// dhcpConfs returns, for each plugin of a complete configuration list (a
// record's, or one nad.Parse normalised) whose IPAM is dhcp with the daemon
// at socket, the configuration that plugin, and so its IPAM plugin, is
// given: libcni's, with the list's name and cniVersion. The dhcp daemon
// keys a lease by the container, that name and the interface.
func dhcpConfs(conflist []byte, socket string) [][]byte {
	l, err := libcni.ConfListFromBytes(conflist)
	if err != nil {
		return nil
	}
	var out [][]byte
	for _, p := range l.Plugins {
		if p.Network.IPAM.Type != IPAMType {
			continue
		}
		var c struct {
			IPAM struct {
				DaemonSocketPath string `json:"daemonSocketPath"`
			} `json:"ipam"`
		}
		if json.Unmarshal(p.Bytes, &c) != nil {
			continue
		}
		if s := c.IPAM.DaemonSocketPath; s != "" && s != socket {
			continue // served by a daemon of the operator's, not this one
		}
		if conf, err := libcni.InjectConf(p, map[string]any{"name": l.Name, "cniVersion": l.CNIVersion}); err == nil {
			out = append(out, conf.Bytes)
		}
	}
	return out
}

// Lease is one DHCP lease a sandbox on this node holds, with what the dhcp
// plugin gave its daemon when the lease was taken: asking the daemon to
// allocate again with the same arguments takes the same lease again (the
// daemon keys it by container ID, network name and interface; the server
// by the same client ID).
type Lease struct {
	ContainerID string
	NetNS       string
	IfName      string
	Args        string // CNI_ARGS
	Network     string // the attachment's network-status name (for logs)
	Conf        []byte
}

// LeasesOf returns the DHCP leases of a sandbox's record: one per plugin
// with dhcp IPAM (at socket) in each attachment's conflist.
func LeasesOf(rec *cache.Record, socket string) []Lease {
	if rec == nil || rec.NetNS == "" {
		return nil
	}
	args := make([]string, 0, len(rec.Args))
	for _, kv := range rec.Args {
		args = append(args, kv[0]+"="+kv[1])
	}
	var out []Lease
	for _, a := range rec.Attachments {
		for _, conf := range dhcpConfs(a.Conflist, socket) {
			out = append(out, Lease{ContainerID: rec.ContainerID, NetNS: rec.NetNS, IfName: a.IfName,
				Args: strings.Join(args, ";"), Network: a.StatusName, Conf: conf})
		}
	}
	return out
}
