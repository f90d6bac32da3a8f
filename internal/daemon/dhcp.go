package daemon

import (
	"fmt"
	"path/filepath"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"k8s.io/client-go/tools/cache"

	plexuscache "github.com/plexus-cni/plexus/internal/cache"
	"github.com/plexus-cni/plexus/internal/daemon/dhcpd"
	"github.com/plexus-cni/plexus/internal/daemon/informer"
	"github.com/plexus-cni/plexus/internal/daemon/metrics"
	"github.com/plexus-cni/plexus/internal/daemon/options"
	"github.com/plexus-cni/plexus/internal/logging"
)

// newDHCP returns the supervisor of the dhcp plugin's daemon: it reads the
// NADs from plexusd's cache (a change pokes it) and the node's records.
func newDHCP(o *options.Options, log *logging.Logger, c *informer.Cache, m *metrics.Metrics) (*dhcpd.Supervisor, error) {
	mode, err := dhcpd.ParseMode(o.DHCPDaemon)
	if err != nil {
		return nil, fmt.Errorf("dhcpDaemon: %w", err)
	}
	nads := c.NADs().GetStore()
	node := &dhcpd.Node{
		Binary: o.DHCPBinary, Socket: o.DHCPSocket, HostPrefix: o.DelegateRoot,
		Records: plexuscache.New(filepath.Join(o.CNIDir, "attachments")),
		NADConfigs: func() []dhcpd.NADConfig {
			var out []dhcpd.NADConfig
			for _, obj := range nads.List() {
				if n, ok := obj.(*nadv1.NetworkAttachmentDefinition); ok && n.Spec.Config != "" {
					out = append(out, dhcpd.NADConfig{Name: n.Name, Config: []byte(n.Spec.Config)})
				}
			}
			return out
		},
		Log: log.Infof,
	}
	s := &dhcpd.Supervisor{Mode: mode, World: node, Metrics: m, Log: log}
	poke := func(any) { s.Poke() }
	if _, err := c.NADs().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: poke, DeleteFunc: poke, UpdateFunc: func(_, n any) { s.Poke() },
	}); err != nil {
		return nil, fmt.Errorf("dhcp daemon: %w", err)
	}
	return s, nil
}

// dhcpPoke has the DHCP supervision look again (a sandbox was deleted:
// the daemon may not be needed any more).
func (d *Daemon) dhcpPoke() {
	if d.dhcp != nil {
		d.dhcp.Poke()
	}
}
