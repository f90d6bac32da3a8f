package inspect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/plexus-cni/plexus/internal/buildinfo"
	"github.com/plexus-cni/plexus/internal/config"
	"github.com/plexus-cni/plexus/pkg/nad"
)

// Finding states.
const (
	OK   = "ok"
	Warn = "warn" // worth a look; does not fail the doctor
	Fail = "fail"
	Skip = "skip"
)

// Finding is one result of Doctor; Subject names the file, interface,
// binary or URL it is about.
type Finding struct {
	Status  string `json:"status"`
	Check   string `json:"check"`
	Subject string `json:"subject"`
	Message string `json:"message"`
}

// Links tells whether a network interface exists on this node.
type Links interface {
	LinkExists(name string) (bool, error)
}

// HostLinks looks interfaces up in the current network namespace.
type HostLinks struct{}

// LinkExists implements Links.
func (HostLinks) LinkExists(name string) (bool, error) {
	_, err := net.InterfaceByName(name)
	if err == nil {
		return true, nil
	}
	var oe *net.OpError
	if errors.As(err, &oe) || strings.Contains(err.Error(), "no such network interface") {
		return false, nil
	}
	return false, err
}

// NetworkConfig is one network config to check: a NAD or a conf file.
type NetworkConfig struct {
	Source string // "ns/name" or a path
	Config []byte
	// ResourceName is a NAD's k8s.v1.cni.cncf.io/resourceName.
	ResourceName string
}

// DoctorOptions configure Doctor.
type DoctorOptions struct {
	// ConfDir is the container runtime's CNI conf dir.
	ConfDir string
	// BinDir overrides the plexus config's binDir.
	BinDir string
	// DaemonURL is plexusd's HTTP address (GET <url>/healthz).
	DaemonURL string
	Links     Links
	HTTP      *http.Client
	// Networks returns the NADs to check, given the plexus configuration's
	// kubeconfig; an error wrapping ErrNotChecked skips the check.
	Networks func(ctx context.Context, kubeconfig string) ([]NetworkConfig, error)
	// OpenIPAMStore opens plexus-ipam's stores to check that they answer
	// (nil: not checked).
	OpenIPAMStore OpenIPAMStore
	// Allocatable asks the kubelet's pod-resources socket how many devices
	// of each resource this node offers (nil: not checked).
	Allocatable func(ctx context.Context, socket string) (map[string]int, error)
}

// ErrNotChecked marks a check that could not run (not a failure).
var ErrNotChecked = errors.New("not checked")

// Doctor checks this node's CNI set-up for plexus.
func Doctor(ctx context.Context, o DoctorOptions) []Finding {
	var out []Finding
	add := func(status, check, subject, format string, args ...any) {
		out = append(out, Finding{Status: status, Check: check, Subject: subject, Message: fmt.Sprintf(format, args...)})
	}
	conf, path := findPlexusConf(o.ConfDir, add)
	if conf == nil {
		return out
	}
	binDir := o.BinDir
	if binDir == "" {
		binDir = conf.BinDir
	}
	fileCheck(add, "readiness", conf.ReadinessIndicatorFile, "readiness indicator file (readinessindicatorfile in "+path+")")
	fileCheck(add, "kubeconfig", conf.Kubeconfig, "kubeconfig of "+path)
	daemonCheck(ctx, o, conf, add)
	configs := []NetworkConfig{}
	if nads, err := o.Networks(ctx, conf.Kubeconfig); errors.Is(err, ErrNotChecked) {
		add(Skip, "networks", "NetworkAttachmentDefinitions", "%v", err)
	} else if err != nil {
		add(Fail, "networks", "NetworkAttachmentDefinitions", "cannot list: %v", err)
	} else {
		configs = nads
	}
	if d, err := nad.FindInDir(conf.ConfDir, conf.ClusterNetwork); err == nil {
		configs = append(configs, NetworkConfig{Source: d.Source, Config: d.Conflist})
	} else if f, err := os.ReadFile(conf.ClusterNetwork); err == nil {
		configs = append(configs, NetworkConfig{Source: conf.ClusterNetwork, Config: f})
	}
	delegateChecks(configs, binDir, o.Links, add)
	ipamChecks(ctx, configs, o, add)
	deviceChecks(ctx, configs, conf.PodResourcesSocket, o.Allocatable, add)
	return out
}

type addFunc func(status, check, subject, format string, args ...any)

// findPlexusConf finds the runtime's first conf file and requires it to be
// plexus's.
func findPlexusConf(dir string, add addFunc) (*config.NetConf, string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		add(Fail, "conf dir", dir, "cannot read: %v", err)
		return nil, ""
	}
	var files []string
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".conf" || ext == ".conflist" || ext == ".json") {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	slices.Sort(files)
	if len(files) == 0 {
		add(Fail, "conf dir", dir, "no CNI configuration (.conf, .conflist, .json): plexus has not written its configuration")
		return nil, ""
	}
	for i, f := range files {
		plugin, err := plexusPlugin(f)
		if err != nil {
			add(Fail, "config", f, "%v", err)
			continue
		}
		if plugin == nil {
			continue
		}
		if i > 0 {
			add(Fail, "config", f, "plexus configuration is not the first in %s: the runtime uses %s", dir, files[0])
		} else {
			add(OK, "config", f, "plexus configuration is the first in %s (the runtime uses it)", dir)
		}
		conf, err := config.Parse(plugin)
		if err != nil {
			add(Fail, "config", f, "invalid plexus configuration: %v", err)
			return nil, ""
		}
		return conf, f
	}
	add(Fail, "config", dir, "no configuration of type %q or %q; the runtime uses %s", nad.ShimType, nad.SelfType, files[0])
	return nil, ""
}

// plexusPlugin returns the plexus plugin object of a conf file, or nil
// when the file is another plugin's.
func plexusPlugin(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var top struct {
		Type    string            `json:"type"`
		Plugins []json.RawMessage `json:"plugins"`
	}
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if nad.IsSelf(top.Type) {
		return data, nil
	}
	if len(top.Plugins) > 0 {
		var p struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(top.Plugins[0], &p) == nil && nad.IsSelf(p.Type) {
			return top.Plugins[0], nil
		}
	}
	return nil, nil
}

func fileCheck(add addFunc, check, path, what string) {
	if path == "" {
		return
	}
	if _, err := os.Stat(path); err != nil {
		add(Fail, check, path, "%s missing: %v", what, errors.Unwrap(err))
		return
	}
	add(OK, check, path, "%s present", what)
}

// daemonCheck asks plexusd for /healthz over HTTP, or dials its socket.
func daemonCheck(ctx context.Context, o DoctorOptions, conf *config.NetConf, add addFunc) {
	switch {
	case o.DaemonURL != "":
		url := strings.TrimSuffix(o.DaemonURL, "/") + "/healthz"
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			add(Fail, "daemon", url, "bad URL: %v", err)
			return
		}
		resp, err := o.HTTP.Do(req)
		if err != nil {
			add(Fail, "daemon", url, "unreachable: %v", err)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		if resp.StatusCode != http.StatusOK {
			add(Fail, "daemon", url, "unhealthy: %s %s", resp.Status, strings.TrimSpace(string(body)))
			return
		}
		add(OK, "daemon", url, "healthy")
		if w := buildinfo.Mismatch("plexusctl", "plexusd at "+o.DaemonURL, resp.Header.Get(buildinfo.Header)); w != "" {
			add(Warn, "version", url, "%s", w)
		}
	case conf.DaemonSocket != "":
		c, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "unix", conf.DaemonSocket)
		if err != nil {
			add(Fail, "daemon", conf.DaemonSocket, "plexusd socket not accepting connections: %v", errors.Unwrap(err))
			return
		}
		c.Close()
		add(OK, "daemon", conf.DaemonSocket, "plexusd socket accepts connections")
	default:
		add(Skip, "daemon", "-", "no --daemon-url and no daemonSocket in the configuration")
	}
}
