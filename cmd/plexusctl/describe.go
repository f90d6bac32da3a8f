package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/plexus-cni/plexus/internal/inspect"
)

func newDescribeCmd(g *globalOptions) *cobra.Command {
	var output string
	o := inspect.DescribeOptions{GlobalNamespaces: []string{"default"}}
	cmd := &cobra.Command{
		Use:   "describe network [NAMESPACE/]NAME",
		Short: "Show a network's config, the pods attached to it and its address pool's usage",
		Long: `describe network shows a NetworkAttachmentDefinition's config, the pod
interfaces that network-status puts on it and, for plexus-ipam, its pools.

Nothing indexes pods by network, and without namespace isolation a pod of
any namespace may use any network. So the pods come from one paged list of
pod metadata (annotations, not specs) over every namespace. Give
--namespace-isolation (and --global-namespaces) as the plugin has them and
only the network's own namespace is read, unless it is a global one.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 2 || (args[0] != "network" && args[0] != "net") {
				return usageError("describe: want \"describe network [NAMESPACE/]NAME\"")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput("describe", output, "text", "json", "yaml"); err != nil {
				return err
			}
			c, ctxNS, err := connect(g)
			if err != nil {
				return err
			}
			ns, name, found := strings.Cut(args[1], "/")
			if !found {
				if ns, err = g.oneNamespace("describe", ctxNS); err != nil {
					return err
				}
				name = args[1]
			}
			n, err := inspect.Describe(cmd.Context(), c, ns, name, o)
			if err != nil {
				return err
			}
			if output != "text" {
				return writeData(cmd.OutOrStdout(), output, n)
			}
			return n.WriteText(cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&output, "output", "o", "text", "output format: text, json or yaml")
	f.BoolVar(&o.NamespaceIsolation, "namespace-isolation", false, "the plugin's namespaceIsolation is on: only the network's namespace (unless global) can use it")
	f.StringSliceVar(&o.GlobalNamespaces, "global-namespaces", o.GlobalNamespaces, "the plugin's globalNamespaces (with --namespace-isolation)")
	cmd.RunE = withExit(cmd.RunE)
	return cmd
}
