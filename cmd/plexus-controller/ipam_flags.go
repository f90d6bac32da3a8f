package main

import (
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/plexus-cni/plexus/internal/controller/ipam"
	"github.com/plexus-cni/plexus/pkg/ipam/config"
	"github.com/plexus-cni/plexus/pkg/ipam/store/etcdstore"
)

// ipamOptions are the IPAM reclaimer's flags.
type ipamOptions struct {
	enabled  bool
	opts     ipam.Options
	etcdHost string
	etcd     etcdstore.Options
}

// ipamFlags registers the IPAM reclaimer's flags. etcd credentials come
// from the environment ($PLEXUS_IPAM_ETCD_USERNAME,
// $PLEXUS_IPAM_ETCD_PASSWORD), never from the command line.
func ipamFlags(fs *pflag.FlagSet, o *ipamOptions) {
	o.opts.Namespaces = []string{envOr("POD_NAMESPACE", "kube-system")}
	fs.BoolVar(&o.enabled, "ipam", true, "reclaim plexus-ipam addresses of pods that are gone")
	fs.Func("ipam-namespaces", "comma-separated `namespaces` holding plexus-ipam allocations (kubernetes.namespace; default $POD_NAMESPACE or kube-system)", func(s string) error {
		o.opts.Namespaces = nil
		for _, v := range strings.Split(s, ",") {
			if v = strings.TrimSpace(v); v != "" {
				o.opts.Namespaces = append(o.opts.Namespaces, v)
			}
		}
		return nil
	})
	fs.DurationVar(&o.opts.Grace, "ipam-grace", ipam.DefaultGrace, "never free an allocation younger than this for a pod that is not found")
	fs.DurationVar(&o.opts.StickyTTL, "ipam-sticky-ttl", ipam.DefaultStickyTTL, "longest life of a sticky address reservation without its pod")
	fs.DurationVar(&o.opts.Resync, "ipam-resync", ipam.DefaultResync, "period of the pass that lists every store (other passes read the informer caches)")
	fs.IntVar(&o.opts.Workers, "ipam-workers", ipam.DefaultWorkers, "allocations confirmed and freed at once")
	fs.StringVar(&o.etcdHost, "ipam-etcd-host", "", "also reclaim the etcd store at host:port[,host:port] (plexus-ipam etcd_host)")
	fs.StringVar(&o.etcd.CertFile, "ipam-etcd-cert-file", "", "etcd client certificate (etcd_cert_file)")
	fs.StringVar(&o.etcd.KeyFile, "ipam-etcd-key-file", "", "etcd client key (etcd_key_file)")
	fs.StringVar(&o.etcd.CACertFile, "ipam-etcd-ca-cert-file", "", "etcd CA certificate (etcd_ca_cert_file)")
}

// reclaimerOptions completes the options after parsing.
func (o *ipamOptions) reclaimerOptions() ipam.Options {
	out := o.opts
	if o.etcdHost != "" {
		e := o.etcd
		e.Endpoints = config.EtcdEndpoints(o.etcdHost, e.CertFile != "" || e.CACertFile != "")
		e.Username, e.Password = os.Getenv("PLEXUS_IPAM_ETCD_USERNAME"), os.Getenv("PLEXUS_IPAM_ETCD_PASSWORD")
		out.Etcd = &e
	}
	return out
}
