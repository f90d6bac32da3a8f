// Command plexus-ipam-local runs plexus-ipam's requests in its own process,
// with the store clients (Kubernetes API, etcd) linked in. plexus-ipam,
// the small binary that NADs name, runs it when plexusd cannot take a
// request (no daemon, or a daemon that is away); it is installed beside
// plexus-ipam and takes the same environment and configuration.
package main

import (
	"os"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/plexus-cni/plexus/internal/buildinfo"
	"github.com/plexus-cni/plexus/internal/ipamlog"
	"github.com/plexus-cni/plexus/pkg/ipam/plugin"
)

func main() {
	p := plugin.Default()
	p.OpenLog = ipamlog.Open(os.Stderr)
	skel.PluginMainFuncs(p.Funcs(), version.All, buildinfo.String("plexus-ipam-local"))
}
