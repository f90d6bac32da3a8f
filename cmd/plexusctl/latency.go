package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-cni/plexus/internal/buildinfo"
	"github.com/plexus-cni/plexus/internal/inspect"
)

// plexusdSelector finds plexusd's pods (deploy/plexusd.yaml).
const plexusdSelector = "app.kubernetes.io/name=plexus,app.kubernetes.io/component=plexusd"

type latencyOptions struct {
	daemonURL, namespace, output string
}

func newLatencyCmd(g *globalOptions) *cobra.Command {
	var o latencyOptions
	cmd := &cobra.Command{
		Use:   "latency NODE | --daemon-url URL",
		Short: "Where a node's ADDs spend their time, phase by phase",
		Long: `latency reads the ADD phase histogram of one node's plexusd
(plexusd_add_phase_duration_seconds) and prints, per phase, how many ADDs
went through it and their mean, 50th, 90th and 99th percentile (estimated
from the buckets), and what the phase adds to an average ADD: the wait for
a slot (admission), the plan (pod, NADs, devices), the attachment record,
each delegate by plugin type, the network-status write and the events.
The last line sums plexus's own share of an ADD.

NODE is reached through the API server (pods/proxy to the plexusd pod on
that node, in --plexus-namespace); on the node itself, --daemon-url reads
plexusd's metrics address directly. The figures count since plexusd started.`,
		Args: func(_ *cobra.Command, args []string) error {
			if (len(args) == 1) == (o.daemonURL != "") || len(args) > 1 {
				return usageError("latency: give a NODE or --daemon-url, not both")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			node := o.daemonURL
			if len(args) == 1 {
				node = args[0]
			}
			return runLatency(cmd, g, &o, node, len(args) == 1)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.daemonURL, "daemon-url", "", "plexusd's metrics address, e.g. http://127.0.0.1:9743")
	f.StringVar(&o.namespace, "plexus-namespace", "kube-system", "namespace of plexusd's DaemonSet")
	f.StringVarP(&o.output, "output", "o", "table", "output format: table, json or yaml")
	cmd.RunE = withExit(cmd.RunE)
	return cmd
}

func runLatency(cmd *cobra.Command, g *globalOptions, o *latencyOptions, node string, viaAPI bool) error {
	if err := checkOutput("latency", o.output, "table", "json", "yaml"); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
	defer cancel()
	var text []byte
	var err error
	if viaAPI {
		text, err = nodeMetrics(ctx, g, o.namespace, node)
	} else {
		text, err = urlMetrics(ctx, o.daemonURL)
	}
	if err != nil {
		return err
	}
	l, err := inspect.ParseLatency(bytes.NewReader(text))
	if err != nil {
		return fmt.Errorf("%s: %w", node, err)
	}
	who := "plexusd at " + node
	if viaAPI {
		who = "plexusd on node " + node
	}
	if w := buildinfo.Mismatch("plexusctl", who, l.Version); w != "" {
		fmt.Fprintln(cmd.ErrOrStderr(), "warning: "+w)
	}
	if o.output != "table" {
		return writeData(cmd.OutOrStdout(), o.output, l)
	}
	return inspect.WriteLatency(cmd.OutOrStdout(), node, l)
}

// nodeMetrics reads /metrics of the plexusd pod on node through the API
// server's pods/proxy, on the pod's port named "metrics".
func nodeMetrics(ctx context.Context, g *globalOptions, ns, node string) ([]byte, error) {
	c, _, err := connect(g)
	if err != nil {
		return nil, err
	}
	pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{
		LabelSelector: plexusdSelector, FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		return nil, fmt.Errorf("find plexusd on node %s: %w", node, err)
	}
	var pod *corev1.Pod
	for i := range pods.Items {
		if pods.Items[i].Status.Phase == corev1.PodRunning {
			pod = &pods.Items[i]
		}
	}
	if pod == nil {
		return nil, &exitError{code: exitInvalid, err: fmt.Errorf("no running plexusd pod on node %q in namespace %s (selector %s)", node, ns, plexusdSelector)}
	}
	port := ""
	for _, ctr := range pod.Spec.Containers {
		for _, p := range ctr.Ports {
			if p.Name == "metrics" {
				port = strconv.Itoa(int(p.ContainerPort))
			}
		}
	}
	if port == "" {
		return nil, &exitError{code: exitInvalid, err: fmt.Errorf("pod %s/%s has no port named metrics", ns, pod.Name)}
	}
	text, err := c.Client.CoreV1().Pods(ns).ProxyGet("http", pod.Name, port, "/metrics", nil).DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("read /metrics of %s/%s through the API server: %w", ns, pod.Name, err)
	}
	return text, nil
}

func urlMetrics(ctx context.Context, base string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/metrics", nil)
	if err != nil {
		return nil, usageError("latency: --daemon-url %q: %v", base, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", req.URL, err)
	}
	defer resp.Body.Close()
	text, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", req.URL, err)
	}
	return text, nil
}
