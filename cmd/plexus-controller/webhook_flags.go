package main

import (
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/plexus-cni/plexus/internal/webhook"
)

// webhookFlags registers the admission webhook's flags.
func webhookFlags(fs *pflag.FlagSet, o *webhook.Options) {
	ns := envOr("POD_NAMESPACE", "kube-system")
	o.SecretNamespace = ns
	o.Hosts = []string{"plexus-webhook." + ns + ".svc", "plexus-webhook." + ns + ".svc.cluster.local"}
	o.Policy.GlobalNamespaces = []string{"default"}
	list := func(dst *[]string) func(string) error {
		return func(s string) error {
			*dst = nil
			for _, v := range strings.Split(s, ",") {
				if v = strings.TrimSpace(v); v != "" {
					*dst = append(*dst, v)
				}
			}
			return nil
		}
	}
	fs.StringVar(&o.Address, "webhook-address", ":9443", `address the admission webhook serves HTTPS on ("" disables it)`)
	fs.StringVar(&o.CertDir, "webhook-cert-dir", "", "directory with tls.crt and tls.key (default: a generated certificate kept in --webhook-secret)")
	fs.StringVar(&o.SecretName, "webhook-secret", "plexus-webhook-tls", "Secret (in $POD_NAMESPACE) keeping the generated webhook certificate")
	fs.Func("webhook-hosts", "comma-separated `names` the generated certificate is valid for (default plexus-webhook.<namespace>.svc[.cluster.local])", list(&o.Hosts))
	fs.StringVar(&o.Configuration, "webhook-configuration", "plexus-webhook", `ValidatingWebhookConfiguration whose caBundle gets the generated CA ("" leaves it)`)
	fs.StringVar(&o.MutatingConfiguration, "webhook-mutating-configuration", "plexus-mutating-webhook", `MutatingWebhookConfiguration whose caBundle gets the generated CA ("" leaves it)`)
	fs.BoolVar(&o.Policy.NamespaceIsolation, "webhook-namespace-isolation", false, "refuse pods selecting NADs outside their namespace and the global namespaces")
	fs.Func("webhook-global-namespaces", "comma-separated `namespaces` whose NADs any pod may use under isolation (default \"default\")", list(&o.Policy.GlobalNamespaces))
	fs.BoolFunc("webhook-ipam-node-defaults", "plexusd writes plexus-ipam's defaults on every node (default true; false refuses plexus-ipam configurations that name no store)",
		func(s string) error {
			v, err := strconv.ParseBool(s)
			o.Policy.NoIPAMDefaults = !v
			return err
		})
	fs.StringVar(&o.Policy.DefaultNetworkNamespace, "webhook-default-network-namespace", "kube-system", "namespace of bare names in the default-network annotation (multusNamespace)")
}
