package main

import (
	"github.com/spf13/cobra"

	"github.com/plexus-cni/plexus/internal/inspect"
)

// getOptions are the flags of `get pods`.
type getOptions struct {
	output        string
	selector      string
	fieldSelector string
}

func newGetCmd(g *globalOptions) *cobra.Command {
	var o getOptions
	cmd := &cobra.Command{
		Use:   "get pods [NAME...] [-l SELECTOR] [--field-selector SELECTOR] [-o wide|json|yaml]",
		Short: "List pods' network interfaces, addresses, MACs and networks (from network-status)",
		Long: `get pods lists the interfaces of pods from their network-status annotation,
one row per interface. -o wide adds the node, whether the networks
annotation requested each interface (a requested network that is not
attached gets a row marked "missing") and the pod's newest Warning event,
such as the FailedCreatePodSandBox of a failed CNI ADD.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) < 1 || (args[0] != "pods" && args[0] != "pod" && args[0] != "po") {
				return usageError("get: want \"get pods [NAME...]\"")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return runGet(cmd, g, &o, args[1:]) },
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "table", "output format: table, wide, json or yaml")
	f.StringVarP(&o.selector, "selector", "l", "", "label selector, e.g. -l app=db,tier!=web")
	f.StringVar(&o.fieldSelector, "field-selector", "", "field selector, e.g. --field-selector spec.nodeName=node-a")
	cmd.RunE = withExit(cmd.RunE)
	return cmd
}

func runGet(cmd *cobra.Command, g *globalOptions, o *getOptions, names []string) error {
	if err := checkOutput("get", o.output, "table", "wide", "json", "yaml"); err != nil {
		return err
	}
	if len(names) > 0 && (o.selector != "" || o.fieldSelector != "") {
		return usageError("get: selectors cannot be used with pod names")
	}
	if len(names) > 0 && g.allNamespaces {
		return usageError("get: a pod cannot be read by name across all namespaces; use -n NAMESPACE")
	}
	c, ctxNS, err := connect(g)
	if err != nil {
		return err
	}
	ns := g.listScope(ctxNS)
	pods, err := inspect.Pods(cmd.Context(), c, inspect.PodQuery{Namespace: ns, Names: names,
		LabelSelector: o.selector, FieldSelector: o.fieldSelector, Events: o.output == "wide"})
	if err != nil {
		return err
	}
	switch {
	case o.output == "json" || o.output == "yaml":
		return writeData(cmd.OutOrStdout(), o.output, pods)
	case len(pods) == 0:
		return noResources(cmd.ErrOrStderr(), ns)
	}
	return inspect.WritePodsTable(cmd.OutOrStdout(), pods, inspect.TableOptions{AllNamespaces: g.allNamespaces, Wide: o.output == "wide"})
}
