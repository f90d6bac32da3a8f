// Command plexus-ipam is plexus's cluster-wide IPAM plugin ("type":
// "plexus-ipam"), configured with Whereabouts' keys and keeping its
// allocations in the Kubernetes API or in etcd (docs/ipam.md). Started by
// a delegate of plexusd (PLEXUS_DAEMON_SOCKET set), it hands the request to
// the daemon, which keeps its store clients open; otherwise, or when the
// daemon does not answer, it runs the request itself.
package main

import (
	"os"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/plexus-cni/plexus/internal/buildinfo"
	"github.com/plexus-cni/plexus/internal/ipamshim"
	"github.com/plexus-cni/plexus/pkg/ipam/plugin"
)

func main() {
	p := plugin.Default()
	p.OpenLog = ipamshim.OpenLog(os.Stderr)
	skel.PluginMainFuncs(ipamshim.New(p.Funcs()).Funcs(), version.All, buildinfo.String("plexus-ipam"))
}
