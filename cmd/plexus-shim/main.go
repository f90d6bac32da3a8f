// Command plexus-shim is what the runtime execs in daemon mode ("type":
// "plexus-shim" in the configuration plexusd writes): it hands each CNI
// request to plexusd over its socket and prints the answer. It links no
// Kubernetes client, so it starts in a few milliseconds. A DEL or CHECK
// that plexusd cannot take, and a configuration without daemonSocket, run
// in the full plexus binary installed beside it (see internal/shim).
package main

import (
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/plexus-cni/plexus/internal/buildinfo"
	"github.com/plexus-cni/plexus/internal/reexec"
	"github.com/plexus-cni/plexus/internal/shim"
)

func main() {
	full := reexec.New("plexus", shim.LocalEnv+"=1")
	skel.PluginMainFuncs(shim.New(full.Funcs()).Funcs(), version.All, buildinfo.String("plexus-shim"))
}
