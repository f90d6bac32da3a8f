// Package options holds plexusd's configuration: defaults, a JSON file
// (--config) and command-line flags, in that order of precedence (a flag
// given on the command line wins over the file). The flag of the file's
// key fooBar is --foo-bar. docs/plexusd.md documents every option.
package options

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/plexus-cni/plexus/internal/cliflags"
	"github.com/plexus-cni/plexus/internal/daemon/dhcpd"
	"github.com/plexus-cni/plexus/internal/daemon/install"
	"github.com/plexus-cni/plexus/internal/logging"
	"github.com/plexus-cni/plexus/pkg/fielderr"
)

// Options configure plexusd. Each JSON key but pluginConfig is a flag too,
// in kebab case (bind).
type Options struct {
	ConfigFile string `json:"-"`

	ConfDir          string `json:"confDir"`
	ConfName         string `json:"confName"`
	BinDir           string `json:"binDir"`
	SourceBinDir     string `json:"sourceBinDir"`
	CNIDir           string `json:"cniDir"`
	SocketPath       string `json:"socketPath"`
	NodeName         string `json:"nodeName"`
	Kubeconfig       string `json:"kubeconfig"`
	PluginKubeconfig string `json:"pluginKubeconfig"`
	APIServer        string `json:"apiServer"`
	TokenFile        string `json:"tokenFile"`
	CAFile           string `json:"caFile"`

	ReadinessIndicatorFile string `json:"readinessIndicatorFile"`
	MetricsAddress         string `json:"metricsAddress"`
	Pprof                  bool   `json:"pprof"`
	LogLevel               string `json:"logLevel"`

	Concurrency             int `json:"concurrency"`
	QueueLength             int `json:"queueLength"`
	ResyncSeconds           int `json:"resyncSeconds"`
	ShutdownTimeoutSeconds  int `json:"shutdownTimeoutSeconds"`
	RequestTimeoutSeconds   int `json:"requestTimeoutSeconds"`
	CacheSyncTimeoutSeconds int `json:"cacheSyncTimeoutSeconds"`

	ServeIPAM       bool   `json:"serveIPAM"`
	IPAMConcurrency int    `json:"ipamConcurrency"`
	IPAMQueueLength int    `json:"ipamQueueLength"`
	IPAMNamespace   string `json:"ipamNamespace"`
	// IPAMKubeAPIQPS and IPAMKubeAPIBurst bound the request rate of each
	// Kubernetes store client of /ipam: one client serves the node's IPAM,
	// about 2.2 requests per allocation.
	IPAMKubeAPIQPS   float32 `json:"ipamKubeApiQps"`
	IPAMKubeAPIBurst int     `json:"ipamKubeApiBurst"`
	// IPAMDefaults turns on the files plexus-ipam reads when a NAD names
	// no store, written into IPAMConfDir (default <confDir>/plexus-ipam.d).
	IPAMDefaults bool   `json:"ipamDefaults"`
	IPAMConfDir  string `json:"ipamConfDir"`
	// WhereaboutsAlias installs plexus-ipam as "whereabouts" too, unless
	// a binary of that name that is not plexus's is there.
	WhereaboutsAlias bool `json:"whereaboutsAlias"`
	// TakeOverMultus switches a node from Multus: plexus wraps the network
	// Multus's configuration wraps and moves Multus's files aside. Off,
	// plexusd stays unready while Multus's configuration is in confDir.
	// With it, confName defaults to install.TakeOverConfName (it sorts
	// before Multus's 00-multus.conf).
	TakeOverMultus bool `json:"takeOverMultus"`
	// DelegateRoot is the host's root directory as mounted in plexusd's
	// container (e.g. /hostroot): delegates run chrooted there, so that they
	// see the host's files (a host-local dataDir, a device plugin's state)
	// as they do when the runtime runs them. Empty: plexusd's own root.
	DelegateRoot string `json:"delegateRoot"`
	// Hotplug applies changes of a running pod's networks annotation to
	// its sandbox (internal/daemon/hotplug); a pod opts out with the
	// annotation plexus.dev/hotplug: "false".
	Hotplug bool `json:"hotplug"`
	// DHCPDaemon says when plexusd runs the reference dhcp plugin's
	// daemon (internal/daemon/dhcpd): auto (while a NAD or a sandbox on
	// the node uses dhcp IPAM), always, or off (the operator runs one).
	DHCPDaemon string `json:"dhcpDaemon"`
	// DHCPBinary is that plugin's binary, run as `dhcp daemon`.
	DHCPBinary string `json:"dhcpBinary"`
	// DHCPSocket is where the dhcp plugin dials its daemon, on the node.
	DHCPSocket string `json:"dhcpSocket"`

	// PluginConfig holds extra keys of the plexus plugin entry in the
	// written configuration (multusNamespace, namespaceIsolation, …); it
	// overrides the keys plexusd sets. JSON file only.
	PluginConfig map[string]any `json:"pluginConfig"`
}

// Defaults returns the options of a plexusd in a DaemonSet; getenv
// supplies NODE_NAME and the in-cluster API server address.
func Defaults(getenv func(string) string) Options {
	srcDir := ""
	if exe, err := os.Executable(); err == nil {
		srcDir = dirOf(exe)
	}
	return Options{
		ConfDir:                 "/etc/cni/net.d",
		ConfName:                install.DefaultConfName,
		BinDir:                  "/opt/cni/bin",
		SourceBinDir:            srcDir,
		CNIDir:                  "/var/lib/cni/plexus",
		SocketPath:              "/run/plexus/plexusd.sock",
		NodeName:                getenv("NODE_NAME"),
		PluginKubeconfig:        "/etc/cni/net.d/plexus.d/plexus.kubeconfig",
		APIServer:               inClusterServer(getenv),
		TokenFile:               install.DefaultTokenFile,
		CAFile:                  install.DefaultCAFile,
		MetricsAddress:          "127.0.0.1:9743",
		LogLevel:                "info",
		Concurrency:             16,
		QueueLength:             64,
		ResyncSeconds:           30,
		ShutdownTimeoutSeconds:  30,
		RequestTimeoutSeconds:   240,
		CacheSyncTimeoutSeconds: 60,
		ServeIPAM:               true,
		IPAMConcurrency:         32,
		IPAMQueueLength:         256,
		IPAMNamespace:           "kube-system",
		IPAMKubeAPIQPS:          400,
		IPAMKubeAPIBurst:        800,
		IPAMDefaults:            true,
		Hotplug:                 true,
		DHCPDaemon:              string(dhcpd.Auto),
		DHCPBinary:              filepath.Join(srcDir, "dhcp"),
		DHCPSocket:              dhcpd.DefaultSocket,
	}
}

func dirOf(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '/' {
			return path[:i]
		}
	}
	return "."
}

func inClusterServer(getenv func(string) string) string {
	host, port := getenv("KUBERNETES_SERVICE_HOST"), getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return ""
	}
	if bytes.ContainsRune([]byte(host), ':') {
		host = "[" + host + "]"
	}
	return "https://" + host + ":" + port
}

// bind registers a flag for every option except PluginConfig. The flag of
// the key fooBar is --foo-bar (cliflags.Kebab: serveIPAM is --serve-ipam);
// --fooBar, the previous release's spelling, works with a warning.
func bind(s *cliflags.Set, o *Options) {
	key := func(k string) string {
		name := cliflags.Kebab(k)
		s.Rename(k, name)
		return name
	}
	fs := s.Group("Configuration file")
	fs.StringVar(&o.ConfigFile, "config", o.ConfigFile, "JSON file of options, keyed as the flags are (fooBar for --foo-bar); flags given here win")

	fs = s.Group("Node")
	fs.StringVar(&o.NodeName, key("nodeName"), o.NodeName, "this node's name (default $NODE_NAME)")
	fs.StringVar(&o.ConfDir, key("confDir"), o.ConfDir, "the runtime's CNI configuration directory")
	fs.StringVar(&o.ConfName, key("confName"), o.ConfName, "file name of the plexus configuration in --conf-dir")
	fs.StringVar(&o.BinDir, key("binDir"), o.BinDir, "CNI plugin directory the binaries are installed into")
	fs.StringVar(&o.SourceBinDir, key("sourceBinDir"), o.SourceBinDir, "directory holding plexus and plexus-ipam to install (empty: install nothing)")
	fs.StringVar(&o.CNIDir, key("cniDir"), o.CNIDir, "plexus state directory (attachment records), passed to the plugin")
	fs.StringVar(&o.SocketPath, key("socketPath"), o.SocketPath, "unix socket serving CNI requests")
	fs.StringVar(&o.ReadinessIndicatorFile, key("readinessIndicatorFile"), o.ReadinessIndicatorFile, "file that must exist before the configuration is written")
	fs.StringVar(&o.DelegateRoot, key("delegateRoot"), o.DelegateRoot, "the host's root as mounted in plexusd's container; delegates run chrooted there (empty: plexusd's own root)")
	fs.BoolVar(&o.TakeOverMultus, key("takeOverMultus"), o.TakeOverMultus, "switch the node from Multus: wrap Multus's network, move its files aside; --conf-name defaults to "+install.TakeOverConfName+" (docs/migrate-multus.md)")
	fs.BoolVar(&o.WhereaboutsAlias, key("whereaboutsAlias"), o.WhereaboutsAlias, "install plexus-ipam as \"whereabouts\" too (refused while Whereabouts is installed)")

	fs = s.Group("Kubernetes")
	fs.StringVar(&o.Kubeconfig, key("kubeconfig"), o.Kubeconfig, "kubeconfig of plexusd itself (empty: in-cluster)")
	fs.StringVar(&o.PluginKubeconfig, key("pluginKubeconfig"), o.PluginKubeconfig, "kubeconfig written for the plugin (empty: none written)")
	fs.StringVar(&o.APIServer, key("apiServer"), o.APIServer, "API server URL written into the plugin kubeconfig")
	fs.StringVar(&o.TokenFile, key("tokenFile"), o.TokenFile, "service account token the plugin kubeconfig carries")
	fs.StringVar(&o.CAFile, key("caFile"), o.CAFile, "CA bundle the plugin kubeconfig carries")
	fs.IntVar(&o.ResyncSeconds, key("resyncSeconds"), o.ResyncSeconds, "period of the full configuration re-check")
	fs.IntVar(&o.CacheSyncTimeoutSeconds, key("cacheSyncTimeoutSeconds"), o.CacheSyncTimeoutSeconds, "how long to wait for informer caches before serving anyway")

	fs = s.Group("CNI requests")
	fs.IntVar(&o.Concurrency, key("concurrency"), o.Concurrency, "CNI requests served at once")
	fs.IntVar(&o.QueueLength, key("queueLength"), o.QueueLength, "CNI requests that may wait; beyond, code 11")
	fs.IntVar(&o.RequestTimeoutSeconds, key("requestTimeoutSeconds"), o.RequestTimeoutSeconds, "bound of one CNI request")
	fs.IntVar(&o.ShutdownTimeoutSeconds, key("shutdownTimeoutSeconds"), o.ShutdownTimeoutSeconds, "how long SIGTERM waits for requests in flight")
	fs.BoolVar(&o.Hotplug, key("hotplug"), o.Hotplug, "attach and remove networks of running pods when their networks annotation changes (a pod opts out with plexus.dev/hotplug: \"false\")")

	fs = s.Group("DHCP")
	fs.StringVar(&o.DHCPDaemon, key("dhcpDaemon"), o.DHCPDaemon, "run the dhcp plugin's daemon: auto (while a NAD or a pod on this node uses dhcp IPAM), always, off")
	fs.StringVar(&o.DHCPBinary, key("dhcpBinary"), o.DHCPBinary, "the reference dhcp plugin, run as `dhcp daemon` (plexus's image ships it beside plexusd)")
	fs.StringVar(&o.DHCPSocket, key("dhcpSocket"), o.DHCPSocket, "the dhcp daemon's socket on the node, where the plugin dials it")

	fs = s.Group("IPAM")
	fs.BoolVar(&o.ServeIPAM, key("serveIPAM"), o.ServeIPAM, "run plexus-ipam requests of the delegates in plexusd (exports PLEXUS_DAEMON_SOCKET)")
	fs.IntVar(&o.IPAMConcurrency, key("ipamConcurrency"), o.IPAMConcurrency, "plexus-ipam requests served at once (own slots, not the CNI ones)")
	fs.IntVar(&o.IPAMQueueLength, key("ipamQueueLength"), o.IPAMQueueLength, "plexus-ipam requests that may wait; beyond, code 11")
	fs.Float32Var(&o.IPAMKubeAPIQPS, key("ipamKubeApiQps"), o.IPAMKubeAPIQPS, "requests per second of each /ipam store client (about 2.2 per allocation: 400 allow about 180 allocations/s)")
	fs.IntVar(&o.IPAMKubeAPIBurst, key("ipamKubeApiBurst"), o.IPAMKubeAPIBurst, "burst of each /ipam store client")
	fs.StringVar(&o.IPAMNamespace, key("ipamNamespace"), o.IPAMNamespace, "namespace of plexus-ipam's objects for the pool metrics (*: all, empty: off)")
	fs.BoolVar(&o.IPAMDefaults, key("ipamDefaults"), o.IPAMDefaults, "write plexus-ipam.conf and plexus-ipam.kubeconfig for NADs that name no store")
	fs.StringVar(&o.IPAMConfDir, key("ipamConfDir"), o.IPAMConfDir, "directory of plexus-ipam's defaults (empty: <conf-dir>/plexus-ipam.d)")

	fs = s.Group("Logging and metrics")
	fs.StringVar(&o.LogLevel, key("logLevel"), o.LogLevel, strings.Join(logging.LevelNames(), ", "))
	fs.StringVar(&o.MetricsAddress, key("metricsAddress"), o.MetricsAddress, "host:port of /metrics, /healthz, /readyz (empty: off)")
	fs.BoolVar(&o.Pprof, key("pprof"), o.Pprof, "serve /debug/pprof/ on the metrics address")
}

// flagSet is plexusd's flags bound to o; deprecation warnings go to warn.
func flagSet(o *Options, warn io.Writer) *cliflags.Set {
	s := cliflags.New("plexusd")
	s.Out, s.Err = warn, warn
	bind(s, o)
	return s
}

// PrintDefaults writes every flag, its meaning and its default to w, by
// group.
func PrintDefaults(w io.Writer, getenv func(string) string) {
	o := Defaults(getenv)
	flagSet(&o, w).PrintUsage(w)
}

// Parse builds the options of `plexusd run` from args (without the
// program name).
func Parse(args []string, getenv func(string) string, stderr io.Writer) (*Options, error) {
	o, err := parse(args, getenv, stderr)
	if err != nil {
		return nil, err
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return o, nil
}

// ParseUninstall builds the options of `plexusd uninstall`: only the files
// matter, so no node name is needed.
func ParseUninstall(args []string, getenv func(string) string, stderr io.Writer) (*Options, error) {
	o, err := parse(args, getenv, stderr)
	if err != nil {
		return nil, err
	}
	if err := o.validateFiles(); err != nil {
		return nil, err
	}
	return o, nil
}

func parse(args []string, getenv func(string) string, stderr io.Writer) (*Options, error) {
	o := Defaults(getenv)
	set := flagSet(&o, stderr)
	if err := set.Parse(args); err != nil {
		return nil, err
	}
	fs := set.Flags()
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.ConfigFile != "" {
		fromFile := Defaults(getenv)
		if err := decodeFile(o.ConfigFile, &fromFile); err != nil {
			return nil, err
		}
		again := flagSet(&fromFile, io.Discard).Flags()
		var setErr error
		fs.Visit(func(f *pflag.Flag) { setErr = errors.Join(setErr, again.Set(f.Name, f.Value.String())) })
		if setErr != nil {
			return nil, setErr
		}
		o = fromFile
	}
	if o.TakeOverMultus && o.ConfName == install.DefaultConfName && !confNameSet(fs, o.ConfigFile) {
		o.ConfName = install.TakeOverConfName
	}
	return &o, nil
}

// confNameSet reports whether confName was given, as a flag or in the file.
func confNameSet(fs *pflag.FlagSet, file string) bool {
	set := fs.Changed("conf-name")
	if raw, err := os.ReadFile(file); !set && file != "" && err == nil {
		var keys map[string]json.RawMessage
		_ = json.Unmarshal(raw, &keys)
		_, set = keys["confName"]
	}
	return set
}

func decodeFile(path string, o *Options) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(o); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	o.ConfigFile = path
	return nil
}

// Validate checks the options that have no usable default.
func (o *Options) Validate() error {
	if o.NodeName == "" {
		return fielderr.New("nodeName", "", "required (set NODE_NAME from spec.nodeName)")
	}
	if err := o.validateFiles(); err != nil {
		return err
	}
	switch {
	case o.SocketPath == "":
		return fielderr.New("socketPath", "", "required")
	case o.Concurrency < 1:
		return fielderr.New("concurrency", fmt.Sprint(o.Concurrency), "must be 1 or more")
	case o.QueueLength < 0:
		return fielderr.New("queueLength", fmt.Sprint(o.QueueLength), "must be 0 or more")
	case o.IPAMConcurrency < 1:
		return fielderr.New("ipamConcurrency", fmt.Sprint(o.IPAMConcurrency), "must be 1 or more")
	case o.IPAMQueueLength < 0:
		return fielderr.New("ipamQueueLength", fmt.Sprint(o.IPAMQueueLength), "must be 0 or more")
	case !(o.IPAMKubeAPIQPS > 0):
		return fielderr.New("ipamKubeApiQps", fmt.Sprint(o.IPAMKubeAPIQPS), "must be more than 0")
	case o.IPAMKubeAPIBurst < 1:
		return fielderr.New("ipamKubeApiBurst", fmt.Sprint(o.IPAMKubeAPIBurst), "must be 1 or more")
	case o.DelegateRoot != "" && !filepath.IsAbs(o.DelegateRoot):
		return fielderr.New("delegateRoot", o.DelegateRoot, "must be an absolute path")
	}
	return o.validateDHCP()
}

// validateDHCP checks the dhcp daemon's options (its paths only when it may
// run).
func (o *Options) validateDHCP() error {
	mode, err := dhcpd.ParseMode(o.DHCPDaemon)
	switch {
	case err != nil:
		return fielderr.New("dhcpDaemon", o.DHCPDaemon, "want auto, always or off")
	case mode == dhcpd.Off:
	case !filepath.IsAbs(o.DHCPSocket):
		return fielderr.New("dhcpSocket", o.DHCPSocket, "must be an absolute path")
	case !filepath.IsAbs(o.DHCPBinary):
		return fielderr.New("dhcpBinary", o.DHCPBinary, "must be an absolute path")
	}
	return nil
}

// validateFiles checks what `plexusd uninstall` needs too.
func (o *Options) validateFiles() error {
	switch {
	case o.ConfDir == "":
		return fielderr.New("confDir", "", "required")
	case o.ConfName == "" || dirOf(o.ConfName) != ".":
		return fielderr.New("confName", o.ConfName, "must be a file name")
	}
	if _, err := logging.ParseLevel(o.LogLevel); err != nil {
		return fielderr.New("logLevel", o.LogLevel, "want one of %s", strings.Join(logging.LevelNames(), ", "))
	}
	return nil
}

// IPAMDir is where plexus-ipam's defaults go ("" when they are off).
func (o *Options) IPAMDir() string {
	switch {
	case !o.IPAMDefaults:
		return ""
	case o.IPAMConfDir != "":
		return o.IPAMConfDir
	default:
		return filepath.Join(o.ConfDir, "plexus-ipam.d")
	}
}

// Seconds converts an option in seconds.
func Seconds(n int) time.Duration { return time.Duration(n) * time.Second }
