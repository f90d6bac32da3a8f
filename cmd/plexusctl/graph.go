package main

import (
	"github.com/spf13/cobra"

	"github.com/plexus-cni/plexus/internal/inspect"
)

func newGraphCmd(g *globalOptions) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "graph [-o svg|mermaid|json]",
		Short: "Draw the networks and the pods attached to them (SVG or Mermaid)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput("graph", output, "svg", "mermaid", "json"); err != nil {
				return err
			}
			c, ctxNS, err := connect(g)
			if err != nil {
				return err
			}
			gr, err := inspect.BuildGraph(cmd.Context(), c, g.listScope(ctxNS))
			if err != nil {
				return err
			}
			switch output {
			case "mermaid":
				return gr.WriteMermaid(cmd.OutOrStdout())
			case "json":
				return writeData(cmd.OutOrStdout(), "json", gr)
			default:
				return gr.WriteSVG(cmd.OutOrStdout())
			}
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "svg", "output format: svg, mermaid or json")
	cmd.RunE = withExit(cmd.RunE)
	return cmd
}
