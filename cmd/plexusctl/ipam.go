package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/plexus-cni/plexus/internal/inspect"
)

// ipamOptions are the flags of the ipam verbs.
type ipamOptions struct {
	output     string
	namespaces []string
	store      string
}

func newIPAMCmd(g *globalOptions) *cobra.Command {
	var o ipamOptions
	cmd := &cobra.Command{
		Use:   "ipam",
		Short: "Inspect plexus-ipam address pools (usage, holders, inconsistencies); import Whereabouts' allocations",
		Long: `ipam reads the plexus-ipam configurations of the NADs of every namespace
(-n: of that one) and the stores they name.`,
	}
	cmd.PersistentFlags().StringVarP(&o.output, "output", "o", "text", "output format: text, json or yaml")
	cmd.PersistentFlags().StringSliceVar(&o.namespaces, "store-namespace", nil, "read the Kubernetes store in these namespaces besides those the NADs name (default kube-system)")
	pools := &cobra.Command{
		Use:   "pools",
		Short: "Each address pool: ranges, size, used, reserved and free addresses",
		Args:  cobra.NoArgs,
		RunE: withExit(func(cmd *cobra.Command, _ []string) error {
			_, ps, err := readPools(cmd, g, &o)
			if err != nil {
				return err
			}
			defer inspect.CloseIPAM(ps)
			switch {
			case o.output != "text":
				return writeData(cmd.OutOrStdout(), o.output, ps)
			case len(ps) == 0:
				return noResources(cmd.ErrOrStderr(), "")
			}
			return inspect.WritePoolsText(cmd.OutOrStdout(), ps)
		}),
	}
	show := &cobra.Command{
		Use:   "show POOL",
		Short: "A pool's holders (address, pod, container, interface, node, age) and any inconsistency found",
		Args:  cobra.ExactArgs(1),
		RunE: withExit(func(cmd *cobra.Command, args []string) error {
			c, ps, err := readPools(cmd, g, &o)
			if err != nil {
				return err
			}
			defer inspect.CloseIPAM(ps)
			p, err := inspect.FindPool(ps, args[0], o.store)
			if err != nil {
				return err
			}
			d, err := inspect.ShowPool(cmd.Context(), c, p)
			if err != nil {
				return err
			}
			if o.output != "text" {
				return writeData(cmd.OutOrStdout(), o.output, d)
			}
			return d.WriteText(cmd.OutOrStdout(), time.Now())
		}),
	}
	show.Flags().StringVar(&o.store, "store", "", "store of the pool when several hold one of that name (kubernetes/NAMESPACE or etcd/ENDPOINTS)")
	cmd.AddCommand(pools, show, newIPAMImportCmd(g, &o))
	return cmd
}

// readPools connects and reads every pool.
func readPools(cmd *cobra.Command, g *globalOptions, o *ipamOptions) (inspect.Cluster, []*inspect.IPAMPool, error) {
	if err := checkOutput("ipam", o.output, "text", "json", "yaml"); err != nil {
		return inspect.Cluster{}, nil, err
	}
	c, _, err := connect(g)
	if err != nil {
		return c, nil, err
	}
	ps, err := inspect.IPAMPools(cmd.Context(), c, inspect.IPAMOptions{NADNamespace: g.clusterScope(), Namespaces: o.namespaces})
	return c, ps, err
}
