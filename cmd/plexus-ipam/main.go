// Command plexus-ipam is plexus's cluster-wide IPAM plugin ("type":
// "plexus-ipam"), configured with Whereabouts' keys and keeping its
// allocations in the Kubernetes API or in etcd (docs/ipam.md).
package main

import (
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/plexus-cni/plexus/internal/buildinfo"
	"github.com/plexus-cni/plexus/pkg/ipam/plugin"
)

func main() {
	skel.PluginMainFuncs(plugin.Default().Funcs(), version.All, buildinfo.String("plexus-ipam"))
}
