// Command plexus is the CNI meta-plugin ("type": "plexus"): it attaches the
// cluster network as eth0 and the networks a pod's annotations select as
// net1, net2, … by delegating to other CNI plugins. With "daemonSocket" in
// its configuration it is a thin shim that hands requests to plexusd.
package main

import (
	"runtime"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/plexus-cni/plexus/internal/buildinfo"
	"github.com/plexus-cni/plexus/internal/plugin"
	"github.com/plexus-cni/plexus/internal/shim"
)

func init() {
	// Namespace switches apply to one OS thread; keep main on it.
	runtime.LockOSThread()
}

func main() {
	skel.PluginMainFuncs(shim.New(plugin.Default().Funcs()).Funcs(), version.All, buildinfo.String("plexus"))
}
