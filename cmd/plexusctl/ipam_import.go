package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-cni/plexus/internal/inspect"
	"github.com/plexus-cni/plexus/internal/wbimport"
	"github.com/plexus-cni/plexus/pkg/ipam/config"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
	"github.com/plexus-cni/plexus/pkg/ipam/store/etcdstore"
	"github.com/plexus-cni/plexus/pkg/ipam/store/kubestore"
)

// importOptions are the flags of `plexusctl ipam import`.
type importOptions struct {
	fromWhereabouts bool
	dryRun          bool
	wbNamespace     string
}

func newIPAMImportCmd(g *globalOptions, o *ipamOptions) *cobra.Command {
	var io importOptions
	cmd := &cobra.Command{
		Use:   "import --from-whereabouts [--dry-run]",
		Short: "Claim in plexus-ipam the addresses Whereabouts gave to pods that still run",
		Long: `import --from-whereabouts reads Whereabouts' IPPools and
OverlappingRangeIPReservations (whereabouts.cni.cncf.io/v1alpha1, in
--whereabouts-namespace) and claims every address held by a pod that still
runs in the plexus-ipam store and address space its NAD's configuration
selects, for that pod, container and interface, so that plexus-ipam never
hands it out again. Holders whose pod is gone or has ended are skipped (the
address is free). An address plexus-ipam already gave to another pod, a
holder that cannot be mapped and a NAD configuration plexus-ipam rejects
are problems. Running it again changes nothing; it is safe while pods come
and go. Every NAD of the cluster is read. Configurations without
kubernetes.namespace, and pools that no NAD names, go to the Kubernetes
store in the first --store-namespace (default kube-system, plexus-ipam's).

Exit status: 0 done (or nothing to do), 1 problems reported or the cluster
could not be read, 2 usage.`,
		Args: cobra.NoArgs,
		RunE: withExit(func(cmd *cobra.Command, _ []string) error { return runImport(cmd, g, o, &io) }),
	}
	cmd.Flags().BoolVar(&io.fromWhereabouts, "from-whereabouts", false, "import Whereabouts' allocations (the only source)")
	cmd.Flags().BoolVar(&io.dryRun, "dry-run", false, "report what would be imported; write nothing")
	cmd.Flags().StringVar(&io.wbNamespace, "whereabouts-namespace", config.DefaultNamespace, "namespace of Whereabouts' IPPools and reservations")
	return cmd
}

func runImport(cmd *cobra.Command, g *globalOptions, o *ipamOptions, io *importOptions) error {
	switch {
	case !io.fromWhereabouts:
		return usageError("ipam import: give --from-whereabouts (the only source)")
	case g.namespace != "":
		return usageError("ipam import: -n %s: the import reads the NADs of every namespace", g.namespace)
	}
	if err := checkOutput("ipam import", o.output, "text", "json", "yaml"); err != nil {
		return err
	}
	c, _, err := connect(g)
	if err != nil {
		return err
	}
	in, err := importInputs(cmd.Context(), c, io.wbNamespace)
	if err != nil {
		return err
	}
	stores := newImportStores(c, o.namespaces)
	defer stores.close()
	rep, err := wbimport.Run(cmd.Context(), in, stores, wbimport.Options{DryRun: io.dryRun})
	if err != nil {
		return err
	}
	if o.output != "text" {
		err = writeData(cmd.OutOrStdout(), o.output, rep)
	} else {
		err = rep.WriteText(cmd.OutOrStdout())
	}
	if err == nil && rep.Count(wbimport.Problem) > 0 {
		return &exitError{code: exitInvalid}
	}
	return err
}

// importInputs reads Whereabouts' objects, the NADs and (on demand) pods.
func importInputs(ctx context.Context, c inspect.Cluster, wbNS string) (wbimport.Inputs, error) {
	in := wbimport.Inputs{Unusable: map[string]error{}}
	pools, err := c.Dynamic.Resource(wbimport.IPPools).Namespace(wbNS).List(ctx, metav1.ListOptions{})
	if err != nil {
		return in, whereaboutsError("ippools", wbNS, err)
	}
	for i := range pools.Items {
		p, err := wbimport.DecodePool(&pools.Items[i])
		if err != nil {
			return in, err
		}
		in.Pools = append(in.Pools, p)
	}
	resv, err := c.Dynamic.Resource(wbimport.Reservations).Namespace(wbNS).List(ctx, metav1.ListOptions{})
	if err != nil {
		return in, whereaboutsError("overlappingrangeipreservations", wbNS, err)
	}
	for i := range resv.Items {
		in.Reservations = append(in.Reservations, wbimport.DecodeReservation(&resv.Items[i]))
	}
	confs, err := inspect.IPAMConfigs(ctx, c, "")
	if err != nil {
		return in, err
	}
	for _, ic := range confs {
		if ic.Err != nil {
			in.Unusable[ic.NAD] = ic.Err
			continue
		}
		in.Networks = append(in.Networks, &wbimport.Network{NAD: ic.NAD, Conf: ic.Conf})
	}
	in.Pod = func(ns, name string) (*corev1.Pod, error) {
		p, err := c.Client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return p, err
	}
	return in, nil
}

func whereaboutsError(resource, ns string, err error) error {
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("listing %s.%s in %s: the API server does not serve them (Whereabouts' CRDs are not installed: nothing to import): %w",
			resource, wbimport.IPPools.Group, ns, err)
	}
	return fmt.Errorf("listing %s.%s in %s: %w", resource, wbimport.IPPools.Group, ns, err)
}

// importStores opens each store once: the Kubernetes store of a
// configuration's namespace (default: the first --store-namespace, else
// kube-system) with plexusctl's credentials, or its etcd store.
type importStores struct {
	c         inspect.Cluster
	defaultNS string
	open      map[string]store.Store
}

func newImportStores(c inspect.Cluster, namespaces []string) *importStores {
	s := &importStores{c: c, defaultNS: config.DefaultNamespace, open: map[string]store.Store{}}
	if len(namespaces) > 0 {
		s.defaultNS = namespaces[0]
	}
	return s
}

// For implements wbimport.Stores.
func (s *importStores) For(n *wbimport.Network) (string, store.Store, error) {
	conf := n.Conf
	var name string
	var open func() (store.Store, error)
	if e := conf.Etcd; e != nil {
		name = "etcd/" + strings.Join(e.Endpoints, ",")
		open = func() (store.Store, error) {
			return etcdstore.New(etcdstore.Options{Endpoints: e.Endpoints, Username: e.Username, Password: e.Password,
				CertFile: e.CertFile, KeyFile: e.KeyFile, CACertFile: e.CACertFile})
		}
	} else {
		ns := conf.Namespace
		if ns == "" {
			ns = s.defaultNS
		}
		name = "kubernetes/" + ns
		open = func() (store.Store, error) { return kubestore.New(s.c.Config, kubestore.Options{Namespace: ns}) }
	}
	if st, ok := s.open[name]; ok {
		return name, st, nil
	}
	st, err := open()
	if err != nil {
		return name, nil, err
	}
	s.open[name] = st
	return name, st, nil
}

func (s *importStores) close() {
	for _, st := range s.open {
		st.Close()
	}
}
