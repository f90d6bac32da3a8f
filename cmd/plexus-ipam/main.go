// Command plexus-ipam is plexus's cluster-wide IPAM plugin ("type":
// "plexus-ipam"), configured with Whereabouts' keys and keeping its
// allocations in the Kubernetes API or in etcd (docs/ipam.md). Started by
// a delegate of plexusd (PLEXUS_DAEMON_SOCKET set), it hands the request to
// the daemon, which keeps its store clients open. Otherwise, or when the
// daemon cannot be reached, the request runs in plexus-ipam-local, the
// binary installed beside it that links the stores: this one links no
// store and no Kubernetes client, so it starts in a few milliseconds.
package main

import (
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/plexus-cni/plexus/internal/buildinfo"
	"github.com/plexus-cni/plexus/internal/ipamshim"
	"github.com/plexus-cni/plexus/internal/reexec"
)

func main() {
	local := reexec.New("plexus-ipam-local")
	skel.PluginMainFuncs(ipamshim.New(local.Funcs()).Funcs(), version.All, buildinfo.String("plexus-ipam"))
}
