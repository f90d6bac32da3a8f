package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/plexus-cni/plexus/internal/inspect"
	"github.com/plexus-cni/plexus/internal/nadclient"
)

// clientConfig is kubectl's loading of the kubeconfig: --kubeconfig, else
// $KUBECONFIG, else ~/.kube/config, with --context.
func clientConfig(g *globalOptions) clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = g.kubeconfig
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: g.context})
}

// contextNamespace is the kubeconfig context's namespace, else "default".
func contextNamespace(cc clientcmd.ClientConfig) string {
	ns, _, err := cc.Namespace()
	if err != nil || ns == "" {
		return "default"
	}
	return ns
}

// connect builds clients from the kubeconfig and returns the context's
// namespace ("default" if none).
func connect(g *globalOptions) (inspect.Cluster, string, error) {
	cc := clientConfig(g)
	cfg, err := cc.ClientConfig()
	if err != nil {
		return inspect.Cluster{}, "", &exitError{code: exitUsage, err: fmt.Errorf("kubeconfig: %w", err)}
	}
	c, err := clients(cfg)
	c.ChunkSize = g.chunkSize
	return c, contextNamespace(cc), err
}

func clients(cfg *rest.Config) (inspect.Cluster, error) {
	cfg.WarningHandler = rest.NoWarnings{}
	c := inspect.Cluster{Config: cfg}
	var err error
	if c.Client, err = kubernetes.NewForConfig(cfg); err != nil {
		return c, fmt.Errorf("client for %s: %w", cfg.Host, err)
	}
	if c.Dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		return c, fmt.Errorf("client for %s: %w", cfg.Host, err)
	}
	if c.NADs, err = nadclient.NewForConfig(cfg); err != nil {
		return c, err
	}
	if c.Metadata, err = metadata.NewForConfig(cfg); err != nil {
		return c, fmt.Errorf("client for %s: %w", cfg.Host, err)
	}
	return c, nil
}

// oneNamespace is the namespace of a verb about objects of one namespace
// (describe, lint): -n, else the context's; -A makes no sense there.
func (g *globalOptions) oneNamespace(verb, contextNS string) (string, error) {
	if g.allNamespaces {
		return "", usageError("%s: --all-namespaces: %s works in one namespace; use -n NAMESPACE", verb, verb)
	}
	if g.namespace != "" {
		return g.namespace, nil
	}
	return contextNS, nil
}

// listScope is the namespace a listing verb (get, graph) reads: "" (all)
// with -A, else -n, else the context's.
func (g *globalOptions) listScope(contextNS string) string {
	switch {
	case g.allNamespaces:
		return ""
	case g.namespace != "":
		return g.namespace
	default:
		return contextNS
	}
}

// clusterScope is the namespace of the networks a node- or pool-wide verb
// (doctor, ipam) reads: -n, else every namespace.
func (g *globalOptions) clusterScope() string {
	if g.allNamespaces {
		return ""
	}
	return g.namespace
}

// noResources says, as kubectl does, that a listing found nothing.
func noResources(w io.Writer, ns string) error {
	var err error
	if ns == "" {
		_, err = fmt.Fprintln(w, "No resources found")
	} else {
		_, err = fmt.Fprintf(w, "No resources found in %s namespace.\n", ns)
	}
	return err
}

// checkOutput refuses output formats outside allowed.
func checkOutput(verb, got string, allowed ...string) error {
	for _, a := range allowed {
		if got == a {
			return nil
		}
	}
	return usageError("%s: --output %q: want one of %v", verb, got, allowed)
}

// writeData writes v as indented JSON or as YAML.
func writeData(w io.Writer, format string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding output: %w", err)
	}
	if format == "yaml" {
		if b, err = yaml.JSONToYAML(b); err != nil {
			return fmt.Errorf("encoding output: %w", err)
		}
	} else {
		b = append(b, '\n')
	}
	_, err = w.Write(b)
	return err
}

// failed gives errors from the cluster (not found, unreachable) exit
// status 1, as kubectl does; usage errors keep theirs.
func failed(err error) error {
	var ee *exitError
	if err == nil || errors.As(err, &ee) {
		return err
	}
	return &exitError{code: exitInvalid, err: err}
}

// withExit applies failed to a command's errors.
func withExit(run func(*cobra.Command, []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error { return failed(run(cmd, args)) }
}
