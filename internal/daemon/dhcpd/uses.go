package dhcpd

import (
	"encoding/json"
	"strings"

	"github.com/plexus-cni/plexus/internal/cache"
)

// IPAMType is the reference DHCP plugin's IPAM type.
const IPAMType = "dhcp"

// DefaultSocket is where the reference dhcp plugin dials its daemon unless
// its configuration names another (ipam.daemonSocketPath).
const DefaultSocket = "/run/cni/dhcp.sock"

// netConf is what a network configuration (a NAD's spec.config, a
// delegate's conflist) says about DHCP: a single configuration's ipam, or
// a list's plugins.
type netConf struct {
	Name       string            `json:"name"`
	CNIVersion string            `json:"cniVersion"`
	Plugins    []json.RawMessage `json:"plugins"`
}

type pluginConf struct {
	IPAM *struct {
		Type             string `json:"type"`
		DaemonSocketPath string `json:"daemonSocketPath"`
	} `json:"ipam"`
}

// Uses reports whether the network configuration conf (a configuration or
// a list) has a plugin whose IPAM is the dhcp plugin dialling socket.
func Uses(conf []byte, socket string) bool { return len(dhcpConfs(conf, socket)) > 0 }

// dhcpConfs returns, for each plugin of conf whose IPAM is dhcp with the
// daemon at socket, the configuration that plugin (and so its IPAM
// plugin) is given: its own object with the list's name and cniVersion,
// as libcni builds it. The dhcp daemon keys a lease by the container,
// that name and the interface.
func dhcpConfs(conf []byte, socket string) [][]byte {
	var nc netConf
	if json.Unmarshal(conf, &nc) != nil {
		return nil
	}
	plugins := nc.Plugins
	if plugins == nil { // a single configuration
		plugins = []json.RawMessage{conf}
	}
	var out [][]byte
	for _, p := range plugins {
		var pc pluginConf
		if json.Unmarshal(p, &pc) != nil || pc.IPAM == nil || pc.IPAM.Type != IPAMType {
			continue
		}
		if s := pc.IPAM.DaemonSocketPath; s != "" && s != socket {
			continue // served by a daemon of the operator's, not this one
		}
		var m map[string]any
		if json.Unmarshal(p, &m) != nil {
			continue
		}
		if nc.Name != "" {
			m["name"] = nc.Name
		}
		if nc.CNIVersion != "" {
			m["cniVersion"] = nc.CNIVersion
		}
		b, err := json.Marshal(m)
		if err == nil {
			out = append(out, b)
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
