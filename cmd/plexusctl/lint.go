package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/plexus-cni/plexus/internal/lint"
)

// lintOptions are the flags of `plexusctl lint`.
type lintOptions struct {
	files  []string
	output string
	opts   lint.Options
}

func newLintCmd(g *globalOptions) *cobra.Command {
	var o lintOptions
	cmd := &cobra.Command{
		Use:   "lint -f FILE [-f FILE...]",
		Short: "Check network annotations and NetworkAttachmentDefinitions in manifests",
		Long: `lint reads multi-document YAML or JSON manifests (Pods, workloads with pod
templates, CronJobs, DeploymentConfigs, NetworkAttachmentDefinitions and
Lists) and reports every invalid k8s.v1.cni.cncf.io/networks or
v1.multus-cni.io/default-network annotation and every invalid NAD config,
without a cluster. "-f -" reads standard input. Objects without a namespace
are in -n's namespace (default: the kubeconfig context's, else "default",
as kubectl apply would put them).

Then it plans every pod and pod template with the plugin's own planner
against the NADs of all the files, and reports what ADD would reject: an
interface name asked for twice (eth0, the cluster network's, included), a
capability (ips, mac, ...) that the NAD does not declare, and a NAD missing
from the files while they hold other NADs of its namespace (a namespace
none of whose NADs is given is not checked). A networks annotation on a
workload's own metadata instead of its pod template is a warning.

Exit status: 0 all valid (warnings allowed), 1 problems found (a document
that is not valid YAML is a problem), 2 usage error or unreadable file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ns, err := g.oneNamespace("lint", contextNamespace(clientConfig(g)))
			if err != nil {
				return err
			}
			o.opts.Namespace = ns
			return runLint(cmd, &o)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&o.files, "filename", "f", nil, `manifest file to lint ("-" for stdin); repeatable`)
	f.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	f.StringVar(&o.opts.DefaultNetworkNamespace, "default-network-namespace", "kube-system",
		"namespace of bare names in the default-network annotation")
	return cmd
}

func runLint(cmd *cobra.Command, o *lintOptions) error {
	if len(o.files) == 0 {
		return usageError("lint: no input; give -f FILE (or -f - for stdin)")
	}
	if o.output != "text" && o.output != "json" {
		return usageError("lint: --output %q: want text or json", o.output)
	}
	var report lint.Report
	for _, name := range o.files {
		r, err := lintFile(cmd.InOrStdin(), name, o.opts)
		if err != nil {
			return &exitError{code: exitUsage, err: err}
		}
		report.Merge(r)
	}
	report.CheckReferences()
	write := report.WriteText
	if o.output == "json" {
		write = report.WriteJSON
	}
	if err := write(cmd.OutOrStdout()); err != nil {
		return err
	}
	if report.Errors() > 0 {
		return &exitError{code: exitInvalid}
	}
	return nil
}

// lintFile lints one named file, or stdin for "-".
func lintFile(stdin io.Reader, name string, opts lint.Options) (*lint.Report, error) {
	if name == "-" {
		return lint.Lint(stdin, "<stdin>", opts)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("lint: %w", err)
	}
	defer f.Close()
	return lint.Lint(f, name, opts)
}
