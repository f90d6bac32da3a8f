package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/plexus-cni/plexus/internal/devices"
	"github.com/plexus-cni/plexus/internal/inspect"
	ipamconfig "github.com/plexus-cni/plexus/pkg/ipam/config"
	ipamplugin "github.com/plexus-cni/plexus/pkg/ipam/plugin"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

type doctorOptions struct {
	confDir, binDir, daemonURL, output string
}

func newDoctorCmd(g *globalOptions) *cobra.Command {
	var o doctorOptions
	cmd := &cobra.Command{
		Use:   "doctor [--conf-dir DIR] [--bin-dir DIR] [--daemon-url URL]",
		Short: "Check this node's CNI set-up for plexus",
		Long: `doctor runs on a node and checks: the runtime's CNI conf dir and that
plexus's configuration is the one the runtime uses; the readiness indicator
file and kubeconfig it names; plexusd's health (--daemon-url, or the
daemonSocket of the configuration); a plugin binary in the bin dir for every
plugin and IPAM type that the NetworkAttachmentDefinitions and the cluster
network use; every macvlan/ipvlan/vlan master interface on this node; and
for every plexus-ipam configuration, the store it uses on this node (its
own keys or the defaults plexusd writes into <conf-dir>/plexus-ipam.d):
that one is named, its kubeconfig exists and the store answers; the
kubelet's pod-resources socket and, for every resourceName that NADs name,
how many devices of it this node offers.
NADs are read with --kubeconfig, else with the configuration's kubeconfig,
in every namespace (-n: in that one).

Exit status: 0 all checks passed (or skipped), 1 a check failed, 2 usage.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDoctor(cmd, g, &o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.confDir, "conf-dir", "/etc/cni/net.d", "the container runtime's CNI configuration directory")
	f.StringVar(&o.binDir, "bin-dir", "", "CNI plugin directory (default: binDir of the plexus configuration)")
	f.StringVar(&o.daemonURL, "daemon-url", "", "plexusd's metrics/health address, e.g. http://127.0.0.1:9743")
	f.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	return cmd
}

func runDoctor(cmd *cobra.Command, g *globalOptions, o *doctorOptions) error {
	if err := checkOutput("doctor", o.output, "text", "json"); err != nil {
		return err
	}
	findings := inspect.Doctor(cmd.Context(), inspect.DoctorOptions{
		ConfDir: o.confDir, BinDir: o.binDir, DaemonURL: o.daemonURL,
		Links: inspect.HostLinks{}, HTTP: &http.Client{Timeout: 5 * time.Second},
		Networks: func(ctx context.Context, kubeconfig string) ([]inspect.NetworkConfig, error) {
			return listNADs(ctx, g, g.clusterScope(), kubeconfig)
		},
		OpenIPAMStore: func(c *ipamconfig.Conf) (store.Store, error) { return ipamplugin.OpenStore(c, nil) },
		Allocatable: func(ctx context.Context, socket string) (map[string]int, error) {
			return (&devices.Kubelet{Socket: socket, Timeout: 5 * time.Second}).Allocatable(ctx)
		},
	})
	failed := 0
	for _, f := range findings {
		if f.Status == inspect.Fail {
			failed++
		}
	}
	var err error
	if o.output == "json" {
		err = writeData(cmd.OutOrStdout(), "json", findings)
	} else {
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 8, 2, ' ', 0)
		for _, f := range findings {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", strings.ToUpper(f.Status), f.Check, f.Subject, f.Message)
		}
		fmt.Fprintf(tw, "%d checks, %d failed\n", len(findings), failed)
		err = tw.Flush()
	}
	if err == nil && failed > 0 {
		return &exitError{code: exitInvalid}
	}
	return err
}

// listNADs reads the NADs of ns ("" for all) with --kubeconfig, else with the plexus
// configuration's kubeconfig.
func listNADs(ctx context.Context, g *globalOptions, ns, pluginKubeconfig string) ([]inspect.NetworkConfig, error) {
	opts := *g
	if opts.kubeconfig == "" {
		opts.kubeconfig = pluginKubeconfig
	}
	if opts.kubeconfig == "" {
		return nil, fmt.Errorf("%w: no --kubeconfig and no kubeconfig in the plexus configuration", inspect.ErrNotChecked)
	}
	c, _, err := connect(&opts)
	if err != nil {
		return nil, err
	}
	return inspect.NADConfigs(ctx, c, ns)
}
