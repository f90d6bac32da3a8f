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
	"strings"
	"syscall"

	"github.com/plexus-cni/plexus/internal/buildinfo"
	"github.com/plexus-cni/plexus/internal/daemon"
	"github.com/plexus-cni/plexus/internal/daemon/install"
	"github.com/plexus-cni/plexus/internal/daemon/options"
	"github.com/plexus-cni/plexus/internal/logging"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// commands are plexusd's subcommands and what they do.
var commands = []struct{ name, args, what string }{
	{"run", "[flags]", "install the binaries, keep the plexus CNI configuration and serve CNI requests (the default)"},
	{"uninstall", "[flags]", "remove the plexus CNI configuration file from --conf-dir; binaries, attachment records\n" +
		"and the kubeconfig stay, so sandboxes set up by plexus can still be deleted"},
	{"version", "", "print the version (also --version)"},
	{"help", "", "print this help"},
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) == 1 && (args[0] == "--version" || args[0] == "-version") {
		args = []string{"version"} // as every plexus binary takes it
	}
	if len(args) > 0 && (args[0] == "uninstall" || args[0] == "version" || args[0] == "run" || args[0] == "help") {
		cmd, args = args[0], args[1:]
	}
	switch {
	case cmd == "version":
		fmt.Fprintln(stdout, buildinfo.String("plexusd"))
		return 0
	case cmd == "help" || wantsHelp(args):
		usage(stdout, cmd)
		return 0
	}
	parse := options.Parse
	if cmd == "uninstall" {
		parse = options.ParseUninstall // files only: no node name needed
	}
	o, err := parse(args, os.Getenv, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "plexusd: %v\n", err)
		return 2
	}
	level, _ := logging.ParseLevel(o.LogLevel) // options.Parse checked it
	log := logging.New(logging.Options{Level: level, Stderr: stderr, Prefix: "plexusd: "})
	if cmd == "uninstall" {
		return uninstall(o, log)
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

// uninstall removes the plexus configuration file and names the Multus
// files a take-over moved aside, with the rename that restores each.
func uninstall(o *options.Options, log *logging.Logger) int {
	in := daemon.NewInstaller(o, log)
	if err := in.Uninstall(); err != nil {
		log.Errorf("uninstall: %v", err)
		return 1
	}
	log.Infof("uninstalled: removed %s", in.Conf.Path())
	moved, err := install.MovedAside(o.ConfDir)
	if err != nil {
		log.Errorf("uninstall: %v", err)
		return 1
	}
	for _, m := range moved {
		log.Infof("Multus's %s was moved aside by takeOverMultus; to go back to Multus: mv %s %s", m.Original, m.Path, m.Original)
	}
	return 0
}

// wantsHelp reports a -h, -help or --help among the flags.
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// usage writes the subcommands (or the one asked about) and the flags.
func usage(w io.Writer, cmd string) {
	fmt.Fprintln(w, "plexusd is the plexus node daemon: one per node, in a privileged host-network DaemonSet.")
	fmt.Fprintln(w, "\nUsage:")
	for _, c := range commands {
		if cmd == c.name || cmd == "run" || cmd == "help" {
			fmt.Fprintf(w, "  %s\n      %s\n", strings.TrimSpace("plexusd "+c.name+" "+c.args), strings.ReplaceAll(c.what, "\n", "\n      "))
		}
	}
	fmt.Fprint(w, "\nFlags of run and uninstall. Each is also a key of the --config file: --foo-bar is fooBar\n"+
		"(docs/plexusd.md). The previous release's spellings (-fooBar) work, with a warning, until the next release.\n\n")
	options.PrintDefaults(w, os.Getenv)
}
