package main

import (
	"github.com/spf13/cobra"

	"github.com/plexus-cni/plexus/internal/inspect"
)

func newGetCmd(g *globalOptions) *cobra.Command {
	var ns nsOptions
	var output string
	cmd := &cobra.Command{
		Use:   "get pods [-n NAMESPACE | -A]",
		Short: "List pods' network interfaces, addresses, MACs and networks (from network-status)",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 || (args[0] != "pods" && args[0] != "pod" && args[0] != "po") {
				return usageError("get: want \"get pods\"")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput("get", output, "table", "json", "yaml"); err != nil {
				return err
			}
			c, ctxNS, err := connect(g)
			if err != nil {
				return err
			}
			pods, err := inspect.Pods(cmd.Context(), c, ns.resolve(ctxNS))
			if err != nil {
				return err
			}
			if output != "table" {
				return writeData(cmd.OutOrStdout(), output, pods)
			}
			return inspect.WritePodsTable(cmd.OutOrStdout(), pods, ns.allNamespaces)
		},
	}
	addNSFlags(cmd, &ns)
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, json or yaml")
	cmd.RunE = withExit(cmd.RunE)
	return cmd
}

func addNSFlags(cmd *cobra.Command, ns *nsOptions) {
	cmd.Flags().StringVarP(&ns.namespace, "namespace", "n", "", "namespace (default: the kubeconfig context's)")
	cmd.Flags().BoolVarP(&ns.allNamespaces, "all-namespaces", "A", false, "every namespace")
}
