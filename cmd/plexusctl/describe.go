package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/plexus-cni/plexus/internal/inspect"
)

func newDescribeCmd(g *globalOptions) *cobra.Command {
	var output, namespace string
	cmd := &cobra.Command{
		Use:   "describe network [NAMESPACE/]NAME",
		Short: "Show a network's config, the pods attached to it and its address pool's usage",
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
				ns, name = (nsOptions{namespace: namespace}).resolve(ctxNS), args[1]
			}
			n, err := inspect.Describe(cmd.Context(), c, ns, name)
			if err != nil {
				return err
			}
			if output != "text" {
				return writeData(cmd.OutOrStdout(), output, n)
			}
			return n.WriteText(cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace of NAME without one (default: the kubeconfig context's)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text, json or yaml")
	cmd.RunE = withExit(cmd.RunE)
	return cmd
}
