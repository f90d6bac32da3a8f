package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/plexus-cni/plexus/internal/buildinfo"
	"github.com/plexus-cni/plexus/internal/inspect"
)

// Exit codes of plexusctl.
const (
	exitOK      = 0
	exitInvalid = 1 // the input was read and found invalid
	exitUsage   = 2 // bad flags or arguments, unreadable input
)

// exitError carries an exit code out of a command; err (if any) is printed
// to stderr.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func usageError(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// globalOptions are the persistent flags, with one meaning in every verb.
type globalOptions struct {
	kubeconfig string
	context    string
	// namespace (-n) and allNamespaces (-A) are kubectl's: -n picks one
	// namespace (default: the kubeconfig context's, else "default"), -A
	// every namespace. Verbs whose subject is a node or the cluster's
	// pools (doctor, ipam) read every namespace unless -n is given.
	namespace     string
	allNamespaces bool
	chunkSize     int64
}

// displayName is how the user invoked plexusctl: "kubectl plexus" when
// kubectl runs it as the plugin kubectl-plexus.
func displayName(invoked string) string {
	if strings.HasPrefix(filepath.Base(invoked), "kubectl-plexus") {
		return "kubectl plexus"
	}
	return "plexusctl"
}

func newRootCmd(name string) *cobra.Command {
	var g globalOptions
	root := &cobra.Command{
		Use:   "plexusctl",
		Short: "Inspect and lint plexus multi-network configuration",
		Long: `plexusctl inspects what plexus attached where (get pods, describe network,
graph, doctor, ipam) and lints manifests offline (lint). Installed on the
PATH as kubectl-plexus (a symlink to plexusctl), it also runs as
"kubectl plexus".

-n and -A mean the same in every verb, as in kubectl: -n NAMESPACE picks
one namespace (default: the kubeconfig context's namespace, else
"default"), -A every namespace. doctor and ipam read every namespace's
networks unless -n is given; lint puts objects without a namespace in
-n's namespace.`,
		Version:       buildinfo.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: name},
	}
	root.SetVersionTemplate(buildinfo.String(name) + "\n")
	root.Flags().Bool("version", false, "print the version") // no -v: kubectl's -v is verbosity
	f := root.PersistentFlags()
	f.StringVar(&g.kubeconfig, "kubeconfig", "", "path to the kubeconfig file (cluster commands)")
	f.StringVar(&g.context, "context", "", "kubeconfig context to use (cluster commands)")
	f.StringVarP(&g.namespace, "namespace", "n", "", "namespace (default: the kubeconfig context's, else \"default\")")
	f.BoolVarP(&g.allNamespaces, "all-namespaces", "A", false, "every namespace")
	f.Int64Var(&g.chunkSize, "chunk-size", inspect.DefaultChunkSize, "read lists in pages of this many objects (0: in one request)")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		if g.chunkSize < 0 {
			return usageError("--chunk-size %d: must be 0 or more", g.chunkSize)
		}
		return nil
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: err}
	})
	root.AddCommand(newLintCmd(&g), newVersionCmd(name), newGetCmd(&g), newDescribeCmd(&g), newDoctorCmd(&g), newGraphCmd(&g), newIPAMCmd(&g), newLatencyCmd(&g))
	return root
}

func newVersionCmd(name string) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), buildinfo.String(name))
			return err
		},
	}
}

// run executes plexusctl, invoked as invoked (argv[0]), with args and
// returns the process exit code.
func run(invoked string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	name := displayName(invoked)
	root := newRootCmd(name)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		// cobra's own errors: unknown commands, bad arguments.
		ee = &exitError{code: exitUsage, err: err}
	}
	if ee.err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, ee.err)
	}
	return ee.code
}
