package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/plexus-cni/plexus/internal/buildinfo"
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

// globalOptions are the persistent flags shared by the cluster verbs.
type globalOptions struct {
	kubeconfig string
	context    string
}

func newRootCmd() *cobra.Command {
	var g globalOptions
	root := &cobra.Command{
		Use:           "plexusctl",
		Short:         "Inspect and lint plexus multi-network configuration",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.kubeconfig, "kubeconfig", "", "path to the kubeconfig file (cluster commands)")
	root.PersistentFlags().StringVar(&g.context, "context", "", "kubeconfig context to use (cluster commands)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: err}
	})
	root.AddCommand(newLintCmd(), newVersionCmd(), newGetCmd(&g), newDescribeCmd(&g), newDoctorCmd(&g), newGraphCmd(&g), newIPAMCmd(&g))
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the plexusctl version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), buildinfo.String("plexusctl"))
			return err
		},
	}
}

// run executes plexusctl with args and returns the process exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd()
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
		fmt.Fprintf(stderr, "plexusctl: %v\n", ee.err)
	}
	return ee.code
}
