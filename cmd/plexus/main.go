// Command plexus is the CNI meta-plugin ("type": "plexus"): it attaches the
// cluster network as eth0 and the networks a pod's annotations select as
// net1, net2, … by delegating to other CNI plugins.
package main

import (
	"runtime"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/plexus-cni/plexus/internal/buildinfo"
	"github.com/plexus-cni/plexus/internal/plugin"
)

func init() {
	// Namespace switches apply to one OS thread; keep main on it.
	runtime.LockOSThread()
}

func main() {
	skel.PluginMainFuncs(plugin.Default().Funcs(), version.All, buildinfo.String("plexus"))
}
