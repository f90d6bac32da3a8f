// Package config loads the plexus meta-plugin configuration: the network
// configuration the runtime passes on stdin. It accepts every Multus key with
// the same meaning, so a Multus configuration works after changing only its
// "type", and applies plexus's defaults.
package config

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/internal/logging"
	"github.com/plexus-cni/plexus/pkg/fielderr"
)

// Defaults for keys the configuration may omit.
const (
	DefaultConfDir           = "/etc/cni/multus/net.d"
	DefaultCNIDir            = "/var/lib/cni/plexus"
	DefaultBinDir            = "/opt/cni/bin"
	DefaultNamespace         = "kube-system"
	DefaultGlobalNamespace   = "default"
	DefaultAttachConcurrency = 4
	DefaultReadinessTimeout  = 45 // seconds
	// DefaultPodResourcesSocket is the kubelet's PodResources socket.
	DefaultPodResourcesSocket = "/var/lib/kubelet/pod-resources/kubelet.sock"
	// DefaultDeviceInfoDir holds the device-info files (NPWG §A.9).
	DefaultDeviceInfoDir = "/var/run/k8s.cni.cncf.io/devinfo"
)

// maxReadinessTimeout is the longest wait, in seconds, that a
// time.Duration holds: a longer one would overflow into the past.
const maxReadinessTimeout = math.MaxInt64 / int(time.Second)

// NetConf is the plexus configuration. Keys follow Multus's spelling.
type NetConf struct {
	types.PluginConf

	ClusterNetwork  string            `json:"clusterNetwork,omitempty"`
	DefaultNetworks []string          `json:"defaultNetworks,omitempty"`
	Delegates       []json.RawMessage `json:"delegates,omitempty"`
	Kubeconfig      string            `json:"kubeconfig,omitempty"`
	ConfDir         string            `json:"confDir,omitempty"`
	CNIDir          string            `json:"cniDir,omitempty"`
	BinDir          string            `json:"binDir,omitempty"`

	NamespaceIsolation bool `json:"namespaceIsolation,omitempty"`
	// GlobalNamespaces is a comma-separated list (Multus's form) or a JSON
	// list; setting it replaces the default ("default").
	GlobalNamespaces StringList `json:"globalNamespaces,omitempty"`
	SystemNamespaces []string   `json:"systemNamespaces,omitempty"`
	MultusNamespace  string     `json:"multusNamespace,omitempty"`

	ReadinessIndicatorFile string `json:"readinessindicatorfile,omitempty"`
	LogFile                string `json:"logFile,omitempty"`
	LogLevel               string `json:"logLevel,omitempty"`
	LogToStderr            *bool  `json:"logToStderr,omitempty"`

	// RuntimeConfig holds the runtime's capability arguments (libcni fills it
	// for the capabilities this config declares). They apply to the cluster
	// network only (NPWG spec §A.7).
	RuntimeConfig map[string]any `json:"runtimeConfig,omitempty"`

	// AttachConcurrency bounds how many secondary attachments of one pod run
	// at once; only attachments that cannot depend on each other ever do
	// (attach.Stages). 1 attaches them one by one.
	AttachConcurrency int `json:"attachConcurrency,omitempty"`
	// ClusterNetworkFirst attaches the cluster network as Multus does: after
	// the pod and its networks are read, alone, before any secondary
	// network. By default plexus in process starts it while it reads them
	// (when it is a file of a self-contained type), and it attaches together with the secondary
	// networks that start the order when it and they cannot depend on each
	// other (attach.Stages); a cluster network of a type plexus does not
	// know (flannel, calico, cilium) always runs alone.
	ClusterNetworkFirst bool `json:"clusterNetworkFirst,omitempty"`
	// ReadinessTimeoutSeconds bounds the wait for ReadinessIndicatorFile.
	ReadinessTimeoutSeconds int `json:"readinessTimeoutSeconds,omitempty"`
	// DaemonSocket, when set, makes the plugin a thin shim that hands the
	// request to plexusd over this unix socket.
	DaemonSocket string `json:"daemonSocket,omitempty"`
	// PodResourcesSocket is where the kubelet answers which devices it
	// gave a pod (networks with a resourceName).
	PodResourcesSocket string `json:"podResourcesSocket,omitempty"`
	// DeviceInfoDir holds the device plugins' device-info files (dp/) and
	// the per-attachment ones plexus writes (cni/).
	DeviceInfoDir string `json:"deviceInfoDir,omitempty"`

	// Raw is the configuration as received.
	Raw []byte `json:"-"`
}

// StringList decodes from a comma-separated string or a JSON string list.
type StringList []string

// UnmarshalJSON implements json.Unmarshaler.
func (l *StringList) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*l = splitComma(s)
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("globalNamespaces: want a comma-separated string or a list of strings, got %s", b)
	}
	*l = list
	return nil
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Parse decodes and validates a plexus configuration and applies defaults.
// Input that is not JSON is an error wrapping its *json.SyntaxError; an
// invalid value is a *fielderr.Error naming the key.
func Parse(stdin []byte) (*NetConf, error) {
	c := &NetConf{}
	if err := json.Unmarshal(stdin, c); err != nil {
		if _, notJSON := err.(*json.SyntaxError); notJSON {
			return nil, fmt.Errorf("config: cannot decode the plexus configuration: %w", err)
		}
		return nil, fielderr.New("config", "", "cannot decode the plexus configuration: %v", err)
	}
	c.Raw = stdin
	c.applyDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *NetConf) applyDefaults() {
	if c.ConfDir == "" {
		c.ConfDir = DefaultConfDir
	}
	if c.CNIDir == "" {
		c.CNIDir = DefaultCNIDir
	}
	if c.BinDir == "" {
		c.BinDir = DefaultBinDir
	}
	if c.MultusNamespace == "" {
		c.MultusNamespace = DefaultNamespace
	}
	if c.GlobalNamespaces == nil {
		c.GlobalNamespaces = StringList{DefaultGlobalNamespace}
	}
	if c.SystemNamespaces == nil {
		c.SystemNamespaces = []string{DefaultNamespace}
	}
	if c.AttachConcurrency == 0 {
		c.AttachConcurrency = DefaultAttachConcurrency
	}
	if c.ReadinessTimeoutSeconds == 0 {
		c.ReadinessTimeoutSeconds = DefaultReadinessTimeout
	}
	if c.PodResourcesSocket == "" {
		c.PodResourcesSocket = DefaultPodResourcesSocket
	}
	if c.DeviceInfoDir == "" {
		c.DeviceInfoDir = DefaultDeviceInfoDir
	}
}

func (c *NetConf) validate() error {
	if c.ClusterNetwork == "" && len(c.Delegates) == 0 {
		return fielderr.New("clusterNetwork", "", "one of clusterNetwork or delegates is required")
	}
	if c.AttachConcurrency < 0 {
		return fielderr.New("attachConcurrency", fmt.Sprint(c.AttachConcurrency), "must be 1 or more")
	}
	if c.ReadinessTimeoutSeconds < 0 || c.ReadinessTimeoutSeconds > maxReadinessTimeout {
		return fielderr.New("readinessTimeoutSeconds", fmt.Sprint(c.ReadinessTimeoutSeconds),
			"must be 1 or more and at most %d", maxReadinessTimeout)
	}
	if _, err := logging.ParseLevel(c.LogLevel); err != nil {
		return fielderr.New("logLevel", c.LogLevel, "want one of %s", strings.Join(logging.LevelNames(), ", "))
	}
	return nil
}

// IsSystemNamespace reports whether ns gets no defaultNetworks.
func (c *NetConf) IsSystemNamespace(ns string) bool {
	for _, s := range c.SystemNamespaces {
		if s == ns {
			return true
		}
	}
	return false
}

// IsGlobalNamespace reports whether NADs in ns may be used from any namespace
// when namespace isolation is on.
func (c *NetConf) IsGlobalNamespace(ns string) bool {
	for _, s := range c.GlobalNamespaces {
		if s == ns {
			return true
		}
	}
	return false
}
