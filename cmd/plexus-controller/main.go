// Command plexus-controller is plexus's cluster side: it reconciles IP
// allocations against pods, renders operator-declared networks into
// NetworkAttachmentDefinitions and serves the admission webhook. The
// reconcilers run on the elected leader only.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/plexus-cni/plexus/internal/buildinfo"
	"github.com/plexus-cni/plexus/internal/cliflags"
	"github.com/plexus-cni/plexus/internal/controller"
	"github.com/plexus-cni/plexus/internal/controller/metrics"
	"github.com/plexus-cni/plexus/internal/logging"
	"github.com/plexus-cni/plexus/internal/nadclient"
	"github.com/plexus-cni/plexus/internal/webhook"
	plexusclient "github.com/plexus-cni/plexus/pkg/client/clientset/versioned"
)

type options struct {
	kubeconfig string
	lease      controller.LeaderElection
	logLevel   string
	version    bool
	// ensureNADCRD: create the NetworkAttachmentDefinition CRD when missing.
	ensureNADCRD bool
	// metricsAddress serves /metrics and /healthz over plain HTTP.
	metricsAddress string
	// qps and burst bound each of the controller's API clients.
	qps     float64
	burst   int
	webhook webhook.Options
	ipam    ipamOptions
}

// parseFlags parses the command line; --help is written to stdout,
// deprecation warnings to stderr. The controller has no configuration file.
func parseFlags(args []string, stdout, stderr io.Writer) (*options, error) {
	o := &options{}
	s := cliflags.New("plexus-controller")
	s.Out, s.Err = stdout, stderr
	host, _ := os.Hostname()
	fs := s.Group("Kubernetes")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster configuration)")
	fs.Float64Var(&o.qps, "kube-api-qps", 200, "requests per second each API client may send (a free costs the reclaimer's store client about 3.3: 200 allow about 60 frees/s)")
	fs.IntVar(&o.burst, "kube-api-burst", 400, "requests each API client may send at once above --kube-api-qps")
	fs.BoolVar(&o.ensureNADCRD, "ensure-nad-crd", true, "create the NetworkAttachmentDefinition CRD when it is missing (never updated or deleted)")
	fs = s.Group("Leader election")
	fs.StringVar(&o.lease.Namespace, "leader-election-namespace", envOr("POD_NAMESPACE", "kube-system"), "namespace of the leader lease")
	fs.StringVar(&o.lease.Name, "leader-election-name", "plexus-controller", "name of the leader lease")
	fs.StringVar(&o.lease.Identity, "leader-election-identity", envOr("POD_NAME", host), "this replica's identity in the lease")
	ipamFlags(s.Group("IPAM reclaimer"), &o.ipam)
	webhookFlags(s.Group("Webhook"), &o.webhook)
	fs = s.Group("Logging and metrics")
	fs.StringVar(&o.logLevel, "log-level", "info", strings.Join(logging.LevelNames(), ", "))
	fs.StringVar(&o.metricsAddress, "metrics-address", ":8080", "host:port of /metrics and /healthz (empty: off)")
	s.Group("Global").BoolVar(&o.version, "version", false, "print the version and exit")
	if err := s.Parse(args); err != nil {
		return nil, err
	}
	if fs := s.Flags(); fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return o, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Stdout, os.Stderr)
	if errors.Is(err, pflag.ErrHelp) {
		os.Exit(0) // -h: parseFlags printed the help
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "plexus-controller: %v (see --help)\n", err)
		os.Exit(2)
	}
	if o.version {
		fmt.Println(buildinfo.String("plexus-controller"))
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "plexus-controller:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o *options) error {
	level, err := logging.ParseLevel(o.logLevel)
	if err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level.Slog()}))
	cfg, err := restConfig(o.kubeconfig)
	if err != nil {
		return err
	}
	if o.qps <= 0 || o.burst <= 0 {
		return fmt.Errorf("--kube-api-qps %v and --kube-api-burst %d: both must be above 0", o.qps, o.burst)
	}
	cfg.QPS, cfg.Burst = float32(o.qps), o.burst
	// Core objects (pods, nodes, leases) in protobuf: a fraction of JSON's
	// size and decode time. The dynamic, metadata and store clients pick
	// their own encoding.
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	d := controller.Deps{Config: cfg, Log: log, Metrics: metrics.New()}
	if d.Client, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	if d.Dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		return err
	}
	// The plexus.dev kinds are CRDs, served in JSON only.
	if d.Plexus, err = plexusclient.NewForConfig(nadclient.JSON(cfg)); err != nil {
		return err
	}
	if d.NADs, err = nadclient.NewForConfig(cfg); err != nil {
		return err
	}
	comps, err := components(ctx, d, o)
	if err != nil {
		return err
	}
	stop, err := serveMetrics(o.metricsAddress, d.Metrics)
	if err != nil {
		return err
	}
	defer stop()
	log.Info("starting", "version", buildinfo.Version, "components", len(comps), "metrics", o.metricsAddress)
	return controller.Run(ctx, d, o.lease, comps)
}

// serveMetrics serves /metrics and /healthz (liveness: the process
// answers) on addr; readiness is the webhook's own /healthz over TLS.
func serveMetrics(addr string, m *metrics.Metrics) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-address %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return func() { srv.Close() }, nil
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		cfg, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("no --kubeconfig and no in-cluster configuration: %w", err)
		}
		return cfg, nil
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("--kubeconfig %s: cannot load it", kubeconfig)
	}
	return cfg, nil
}
