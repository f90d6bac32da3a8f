// Package daemon wires plexusd together: it installs the plugin binaries,
// keeps the plexus CNI configuration and the plugin's kubeconfig current
// (package install), runs the informer caches (package informer), serves
// CNI requests from the plexus shim on a unix socket (package server),
// hot-plugs running pods (package hotplug), runs the dhcp plugin's daemon
// while the node uses DHCP (package dhcpd), and serves metrics, health and
// readiness over HTTP. On SIGTERM it stops accepting requests, lets those in
// flight finish (bounded), and leaves the configuration file in place, so
// that no pod ever starts without plexus.
package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/plexus-cni/plexus/internal/cache"
	"github.com/plexus-cni/plexus/internal/config"
	"github.com/plexus-cni/plexus/internal/daemon/dhcpd"
	"github.com/plexus-cni/plexus/internal/daemon/hotplug"
	"github.com/plexus-cni/plexus/internal/daemon/informer"
	"github.com/plexus-cni/plexus/internal/daemon/install"
	"github.com/plexus-cni/plexus/internal/daemon/metrics"
	"github.com/plexus-cni/plexus/internal/daemon/options"
	"github.com/plexus-cni/plexus/internal/daemon/poolwatch"
	"github.com/plexus-cni/plexus/internal/daemon/server"
	"github.com/plexus-cni/plexus/internal/daemon/wire"
	"github.com/plexus-cni/plexus/internal/ipamlog"
	"github.com/plexus-cni/plexus/internal/kube/kubecs"
	"github.com/plexus-cni/plexus/internal/logging"
	"github.com/plexus-cni/plexus/internal/nadclient"
	"github.com/plexus-cni/plexus/internal/plugin"
	plexusclient "github.com/plexus-cni/plexus/pkg/client/clientset/versioned"
	ipamplugin "github.com/plexus-cni/plexus/pkg/ipam/plugin"
)

// requestTimeout bounds each API request of plexusd (not a watch: see
// clients).
const requestTimeout = 30 * time.Second

// Binaries are the files installed from SourceBinDir into BinDir.
var Binaries = []string{"plexus", "plexus-shim", "plexus-ipam", "plexus-ipam-local"}

// Daemon is one running plexusd.
type Daemon struct {
	o         *options.Options
	log       *logging.Logger
	metrics   *metrics.Metrics
	installer *install.Installer
	cache     *informer.Cache
	server    *server.Server
	pools     *poolwatch.Watcher
	hotplug   *hotplug.Loop     // nil with --hotplug=false
	dhcp      *dhcpd.Supervisor // nil with --dhcp-daemon=off

	stopping atomic.Bool
}

// hotplugWorkers hot-plug that many pods at once (each pod one at a time).
const hotplugWorkers = 4

// New builds the daemon from its options; nothing runs until Run.
func New(o *options.Options, log *logging.Logger) (*Daemon, error) {
	cfg, err := restConfig(o.Kubeconfig)
	if err != nil {
		return nil, err
	}
	return newDaemon(o, log, cfg)
}

// newDaemon builds the daemon with cfg, the configuration of its
// requests (its Timeout bounds each).
func newDaemon(o *options.Options, log *logging.Logger, cfg *rest.Config) (*Daemon, error) {
	c, err := newClients(cfg)
	if err != nil {
		return nil, err
	}
	cs := c.requests
	d := &Daemon{o: o, log: log, metrics: metrics.New()}
	d.cache = informer.New(informer.Clients{Watch: c.watch, WatchNADs: c.watchNADs, Live: cs, LiveNADs: c.requestNADs},
		o.NodeName, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := informer.CanCacheDRA(ctx, cs); err != nil {
		log.Infof("DRA ResourceClaims and ResourceSlices are read live, not cached: %v", err)
	} else {
		d.cache.WithDRA()
	}
	cancel()
	d.installer = NewInstaller(o, log)
	events := &nodeEvents{cs: cs, node: o.NodeName, log: log}
	d.installer.OnChange = func(st install.State) {
		d.metrics.ConfWritten(st.ConfCurrent)
		events.observe(st)
	}
	p := &plugin.Plugin{NewAPI: d.cache.API, Stderr: os.Stderr, Exec: newDelegateExec(o, os.Getenv), Phases: d.metrics}
	if dhcpd.Mode(o.DHCPDaemon) != dhcpd.Off {
		if d.dhcp, err = newDHCP(o, log, d.cache, d.metrics); err != nil {
			return nil, err
		}
	}
	so := server.Options{
		Concurrency: o.Concurrency, QueueLength: o.QueueLength,
		RequestTimeout: options.Seconds(o.RequestTimeoutSeconds),
		Networks:       networks, Recorder: d.metrics, Log: log,
	}
	if o.ServeIPAM {
		so.IPAM = &server.Endpoint{Handler: ipamHandler{ipamplugin.NewDaemon(ipamPlugin(), log.Debugf, ipamplugin.DaemonOptions{
			ConfFiles: ipamConfFiles(o), Credentials: cfg, KubeQPS: o.IPAMKubeAPIQPS, KubeBurst: o.IPAMKubeAPIBurst})},
			Concurrency: o.IPAMConcurrency, QueueLength: o.IPAMQueueLength,
			Networks: ipamNetwork, Recorder: d.metrics.IPAM()}
	}
	d.server = server.New(cniHandler{p: p, deleted: d.dhcpPoke}, so)
	if o.Hotplug {
		events := kubecs.NewClient(cs, c.requestNADs, "")
		events.Component = "plexusd"
		d.hotplug = hotplug.New(hotplug.Loop{Replug: p, CNIDir: o.CNIDir, Pods: d.cache.Pods().GetIndexer(),
			Events: events, Metrics: d.metrics, Log: log})
		if _, err := d.cache.Pods().AddEventHandler(d.hotplug.Handler()); err != nil {
			return nil, fmt.Errorf("hot-plug: %w", err)
		}
	}
	if o.IPAMNamespace != "" {
		ns := o.IPAMNamespace
		if ns == "*" {
			ns = metav1.NamespaceAll
		}
		d.pools = poolwatch.New(c.watchPlexus, ns, o.NodeName, 0, log)
		d.metrics.SetPoolSource(d.pools.Pools)
	}
	return d, nil
}

// ipamPlugin returns plexus-ipam's commands as the binary runs them,
// logging to plexusd's stderr and the configuration's log_file.
func ipamPlugin() *ipamplugin.Plugin {
	p := ipamplugin.Default()
	p.OpenLog = ipamlog.Open(os.Stderr)
	return p
}

// ipamHandler runs a forwarded plexus-ipam request with the environment
// the plugin process saw.
type ipamHandler struct{ d *ipamplugin.Daemon }

func (h ipamHandler) Do(ctx context.Context, req server.Request) (types.Result, string, error) {
	return h.d.Do(ctx, ipamplugin.Request{Command: req.Command, Args: req.Args, Env: req.Env})
}

// ipamConfFiles is the flat file plexusd writes for plexus-ipam, which
// its /ipam endpoint reads first.
func ipamConfFiles(o *options.Options) []string {
	if dir := o.IPAMDir(); dir != "" {
		return []string{filepath.Join(dir, install.IPAMConfName)}
	}
	return nil
}

// ipamNetwork names the CNI network of a plexus-ipam request.
func ipamNetwork(req *wire.Request) []string {
	var c struct {
		Name string `json:"name"`
	}
	if json.Unmarshal(req.Config, &c) != nil || c.Name == "" {
		return nil
	}
	return []string{c.Name}
}

// clients are plexusd's API clients. client-go applies a REST config's
// Timeout to the whole HTTP exchange, a watch's stream included: with the
// requests' 30 s every informer would lose its watch every 30 s (each
// node re-opening its four or five watches twice a minute). The informers
// get clients of a copy without Timeout, so that a watch lives the
// reflector's 5-10 minutes (the server ends it); requests keep theirs.
// Both configurations get the same transport from client-go's cache (the
// Timeout is the HTTP client's, not the transport's), so no connection is
// added; each clientset has its own rate limiter.
type clients struct {
	// requests serves the reads on a cache miss, the writes, the events
	// and CanCacheDRA's lists: each ends within the Timeout.
	requests    kubernetes.Interface
	requestNADs nadclient.Interface
	// watch, watchNADs and watchPlexus serve the informers' lists and
	// watches (and poolwatch's probe, under its own context timeout),
	// nothing else: a request through them is bounded by its context only.
	// watchPlexus is the typed plexus.dev clientset, speaking JSON.
	watch       kubernetes.Interface
	watchNADs   nadclient.Interface
	watchPlexus plexusclient.Interface
}

func newClients(cfg *rest.Config) (*clients, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client for %s: %w", cfg.Host, err)
	}
	wcfg := watchConfig(cfg)
	wcs, err := kubernetes.NewForConfig(wcfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client for %s: %w", cfg.Host, err)
	}
	// The plexus.dev kinds are CRDs, served in JSON only.
	wplexus, err := plexusclient.NewForConfig(nadclient.JSON(wcfg))
	if err != nil {
		return nil, fmt.Errorf("plexus.dev client for %s: %w", cfg.Host, err)
	}
	nads, err := nadclient.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	wnads, err := nadclient.NewForConfig(wcfg)
	if err != nil {
		return nil, err
	}
	return &clients{requests: cs, requestNADs: nads, watch: wcs, watchNADs: wnads, watchPlexus: wplexus}, nil
}

// watchConfig returns a copy of cfg for informers: without Timeout, which
// would cut each watch.
func watchConfig(cfg *rest.Config) *rest.Config {
	w := rest.CopyConfig(cfg)
	w.Timeout = 0
	return w
}

// restConfig loads the daemon's own credentials: a kubeconfig file, else
// the in-cluster service account (whose token client-go re-reads). Its
// Timeout is the requests' (watchConfig drops it for the informers).
func restConfig(kubeconfig string) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: cannot load it", kubeconfig)
		}
	} else if cfg, err = rest.InClusterConfig(); err != nil {
		return nil, fmt.Errorf("in-cluster configuration (set kubeconfig outside a cluster): %w", err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	cfg.Timeout = requestTimeout
	cfg.UserAgent = "plexusd"
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	return cfg, nil
}

// NewInstaller returns the installer the options describe (also used by
// `plexusd uninstall`).
func NewInstaller(o *options.Options, log *logging.Logger) *install.Installer {
	pluginConf := map[string]any{
		"daemonSocket": o.SocketPath,
		"cniDir":       o.CNIDir,
		"binDir":       o.BinDir,
	}
	if k := o.PluginKubeconfig; k != "" {
		pluginConf["kubeconfig"] = k
	} else if o.Kubeconfig != "" {
		pluginConf["kubeconfig"] = o.Kubeconfig
	}
	if f := o.ReadinessIndicatorFile; f != "" {
		pluginConf["readinessindicatorfile"] = f
	}
	for k, v := range o.PluginConfig {
		pluginConf[k] = v
	}
	in := &install.Installer{
		Conf:           install.ConfOptions{Dir: o.ConfDir, Name: o.ConfName, Plugin: pluginConf},
		ReadinessFile:  o.ReadinessIndicatorFile,
		TakeOverMultus: o.TakeOverMultus,
		Log:            log,
	}
	// The kubeconfigs written for the plugins all carry the service
	// account's token; without one, plexus-ipam's defaults name plexusd's
	// own kubeconfig.
	sa := func(path string) *install.KubeconfigOptions {
		if o.PluginKubeconfig == "" {
			return nil
		}
		return &install.KubeconfigOptions{Path: path, Server: o.APIServer, TokenFile: o.TokenFile, CAFile: o.CAFile}
	}
	in.Kubeconfig = sa(o.PluginKubeconfig)
	if dir := o.IPAMDir(); dir != "" {
		in.IPAM = &install.IPAMDefaults{Dir: dir, Kubeconfig: sa(""), KubeconfigPath: o.Kubeconfig}
	}
	if o.WhereaboutsAlias {
		in.Alias = &install.Alias{
			Source:     filepath.Join(o.BinDir, "plexus-ipam"),
			Target:     filepath.Join(o.BinDir, install.WhereaboutsName),
			Kubeconfig: sa(filepath.Join(o.ConfDir, "whereabouts.d", "whereabouts.kubeconfig")),
		}
	}
	return in
}

// cniHandler runs a meta-plugin request.
type cniHandler struct {
	p       *plugin.Plugin
	deleted func() // after a DEL
}

func (h cniHandler) Do(ctx context.Context, req server.Request) (types.Result, string, error) {
	r, out, err := h.p.Do(ctx, req.Command, req.Args)
	if req.Command == "DEL" && h.deleted != nil {
		h.deleted()
	}
	return r, out, err
}

// networks names the networks of a request from its attachment record.
func networks(req *wire.Request) []string {
	var c struct {
		CNIDir string `json:"cniDir"`
	}
	if req.ContainerID == "" || json.Unmarshal(req.Config, &c) != nil {
		return nil
	}
	if c.CNIDir == "" {
		c.CNIDir = config.DefaultCNIDir
	}
	rec, err := cache.New(filepath.Join(c.CNIDir, "attachments")).Load(req.ContainerID)
	if err != nil || rec == nil {
		return nil
	}
	names := make([]string, 0, len(rec.Attachments))
	for _, a := range rec.Attachments {
		names = append(names, a.StatusName)
	}
	return names
}

// Run runs the daemon until ctx ends, then shuts down gracefully.
func (d *Daemon) Run(ctx context.Context) error {
	if d.o.SourceBinDir != "" {
		installed, err := install.Binaries(d.o.SourceBinDir, d.o.BinDir, Binaries)
		if err != nil {
			return err
		}
		d.log.Infof("binaries in %s: installed %v (others were current or absent)", d.o.BinDir, installed)
	}
	// The caches and the installer outlive ctx until in-flight requests end.
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	d.cache.Start(bg)
	go d.watchSync(bg)
	installerDone := make(chan error, 1)
	go func() { installerDone <- d.installer.Run(bg, options.Seconds(d.o.ResyncSeconds)) }()
	if d.pools != nil {
		go d.pools.Run(bg)
	}
	if d.dhcp != nil {
		go func() {
			// Decide once the NADs are known; caches that do not sync in
			// time leave the records (the leases held here) to decide.
			sctx, cancel := context.WithTimeout(bg, options.Seconds(d.o.CacheSyncTimeoutSeconds))
			d.cache.WaitForSync(sctx)
			cancel()
			d.dhcp.Run(bg)
		}()
	}
	if d.hotplug != nil {
		go func() {
			if d.cache.WaitForSync(bg) {
				d.hotplug.Run(bg, hotplugWorkers)
			}
		}()
	}
	l, err := server.Listen(d.o.SocketPath)
	if err != nil {
		return err
	}
	serveDone := make(chan error, 1)
	go func() { serveDone <- d.server.Serve(l) }()
	stopHTTP, err := d.serveHTTP()
	if err != nil {
		l.Close()
		return err
	}
	defer stopHTTP()
	d.log.Infof("plexusd for node %s serving CNI on %s", d.o.NodeName, d.o.SocketPath)
	select {
	case <-ctx.Done():
	case err := <-serveDone:
		return err
	case err := <-installerDone:
		return err
	}
	return d.shutdown()
}

func (d *Daemon) shutdown() error {
	d.stopping.Store(true)
	timeout := options.Seconds(d.o.ShutdownTimeoutSeconds)
	d.log.Infof("stopping: no new CNI requests, waiting up to %v for those in flight; %s stays", timeout, d.installer.Conf.Path())
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return d.server.Shutdown(ctx)
}

// watchSync records the informer sync state; after the bounded wait it
// logs that reads fall back to the API and keeps waiting.
func (d *Daemon) watchSync(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, options.Seconds(d.o.CacheSyncTimeoutSeconds))
	ok := d.cache.WaitForSync(sctx)
	cancel()
	if !ok && ctx.Err() == nil {
		d.log.Errorf("informer caches not synced after %ds; serving with live reads meanwhile", d.o.CacheSyncTimeoutSeconds)
		ok = d.cache.WaitForSync(ctx)
	}
	d.recordSync()
	if ok {
		d.log.Infof("informer caches synced")
	}
}

func (d *Daemon) recordSync() map[string]bool {
	synced := d.cache.Synced()
	for res, ok := range synced {
		d.metrics.CacheSynced(res, ok)
	}
	return synced
}

// serveHTTP serves /metrics, /healthz, /readyz (and pprof) when configured.
func (d *Daemon) serveHTTP() (stop func(), err error) {
	if d.o.MetricsAddress == "" {
		return func() {}, nil
	}
	l, err := net.Listen("tcp", d.o.MetricsAddress)
	if err != nil {
		return nil, fmt.Errorf("metricsAddress %s: %w", d.o.MetricsAddress, err)
	}
	srv := &http.Server{Handler: d.httpHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return func() { srv.Close() }, nil
}
