package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/plexus-cni/plexus/internal/inspect"
)

// connect builds clients from --kubeconfig / --context (kubectl's loading
// rules otherwise) and returns the context's namespace ("default" if none).
func connect(g *globalOptions) (inspect.Cluster, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = g.kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: g.context})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return inspect.Cluster{}, "", &exitError{code: exitUsage, err: fmt.Errorf("kubeconfig: %w", err)}
	}
	ns, _, err := cc.Namespace()
	if err != nil || ns == "" {
		ns = "default"
	}
	c, err := clients(cfg)
	return c, ns, err
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
	return c, nil
}

// nsOptions are kubectl's -n / -A.
type nsOptions struct {
	namespace     string
	allNamespaces bool
}

// resolve returns the namespace to read ("" for all).
func (o nsOptions) resolve(contextNS string) string {
	switch {
	case o.allNamespaces:
		return ""
	case o.namespace != "":
		return o.namespace
	default:
		return contextNS
	}
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
