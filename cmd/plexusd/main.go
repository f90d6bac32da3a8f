// Command plexusd is the plexus node daemon (one per node, a privileged
// host-network DaemonSet): it installs the plexus binaries, writes and keeps
// the plexus CNI configuration and the plugin's kubeconfig, and serves the
// CNI requests of the plexus shim from informer caches.
//
//	plexusd [flags]            run (see docs/plexusd.md for every option)
//	plexusd uninstall [flags]  remove the plexus CNI configuration file
//	plexusd version
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/plexus-cni/plexus/internal/buildinfo"
	"github.com/plexus-cni/plexus/internal/daemon"
	"github.com/plexus-cni/plexus/internal/daemon/options"
	"github.com/plexus-cni/plexus/internal/logging"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && (args[0] == "uninstall" || args[0] == "version" || args[0] == "run") {
		cmd, args = args[0], args[1:]
	}
	if cmd == "version" {
		fmt.Fprintln(os.Stdout, buildinfo.String("plexusd"))
		return 0
	}
	o, err := options.Parse(args, os.Getenv, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "plexusd: %v\n", err)
		return 2
	}
	level, _ := logging.ParseLevel(o.LogLevel) // options.Parse checked it
	log := logging.New(logging.Options{Level: level, Stderr: stderr, Prefix: "plexusd: "})
	if cmd == "uninstall" {
		if err := daemon.NewInstaller(o, log).Uninstall(); err != nil {
			log.Errorf("uninstall: %v", err)
			return 1
		}
		log.Infof("uninstalled: removed the plexus CNI configuration from %s", o.ConfDir)
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	d, err := daemon.New(o, log)
	if err != nil {
		log.Errorf("%v", err)
		return 1
	}
	if err := d.Run(ctx); err != nil {
		log.Errorf("%v", err)
		return 1
	}
	log.Infof("stopped")
	return 0
}
