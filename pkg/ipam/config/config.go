// Package config parses plexus-ipam's CNI configuration into a typed,
// validated Conf: every Whereabouts key with its meaning, host-local
// "ranges", the configuration_path file merged under the NAD's keys, and
// the addresses a request asks for (runtimeConfig "ips", args.cni.ips or
// CNI_ARGS IP=). Nothing else in plexus-ipam reads the configuration.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strings"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/pkg/fielderr"
	"github.com/plexus-cni/plexus/pkg/ipam/alloc"
	"github.com/plexus-cni/plexus/pkg/nad"
)

// Types accepted as the IPAM "type".
const (
	TypePlexus      = "plexus-ipam"
	TypeWhereabouts = "whereabouts"
)

// DefaultNamespace holds the allocation objects when neither
// kubernetes.namespace nor the kubeconfig's context names one.
const DefaultNamespace = "kube-system"

// Conf is one request's configuration.
type Conf struct {
	CNIVersion string
	// Name is the CNI network name (the config's "name").
	Name string
	// NetworkName is network_name: allocations of different names are
	// independent even when their ranges overlap.
	NetworkName string
	// OverlappingRanges is enable_overlapping_ranges (default true).
	OverlappingRanges bool
	// Sticky is "sticky": a pod's addresses outlive it as reservations for
	// its namespace and name, which the next pod of that name takes over
	// (a StatefulSet pod keeps its address across recreation).
	Sticky bool
	// Claim is the IPAMClaim the pod's network selection names
	// (args.cni "ipam-claim-reference", which plexus passes on): the
	// addresses belong to the claim, in the pod's namespace.
	Claim string
	// Slots yield one address each, in order.
	Slots  []Slot
	Routes []*types.Route
	DNS    types.DNS
	// Kubeconfig and Namespace select the Kubernetes store.
	Kubeconfig string
	Namespace  string
	// Etcd selects the etcd store when non-nil (etcd_host is set).
	Etcd     *Etcd
	LogFile  string
	LogLevel string
	// ValidAttachments is cni.dev/valid-attachments (GC only).
	ValidAttachments []types.GCAttachment
	// Pod comes from CNI_ARGS.
	Pod Args
}

// Slot is one address of the attachment: the first range with a free
// address gives it (one range for Whereabouts entries, one or more for a
// host-local range set).
type Slot struct {
	Ranges []*alloc.Range
	// Want is the requested address, if any.
	Want netip.Addr
}

// Etcd holds the etcd_* keys.
type Etcd struct {
	Endpoints  []string
	Username   string
	Password   string
	KeyFile    string
	CertFile   string
	CACertFile string
}

// Space returns the address-space key of r: allocations in one space never
// share an address. With overlapping ranges enabled (the default) every
// range of a network_name shares one space; disabled, each range CIDR has
// its own.
func (c *Conf) Space(r *alloc.Range) string {
	s := "net:" + c.NetworkName
	if !c.OverlappingRanges {
		s += " range:" + r.Subnet.String()
	}
	return s
}

// Files reads configuration files.
type Files interface {
	ReadFile(name string) ([]byte, error)
}

// OSFiles reads from the local file system.
type OSFiles struct{}

// ReadFile implements Files.
func (OSFiles) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }

// Loader parses configurations.
type Loader struct {
	Files Files
	// DefaultPaths are tried, in order, when configuration_path is unset.
	DefaultPaths []string
}

// DefaultLoader reads from the file system and looks for the flat file the
// plexus DaemonSet writes.
func DefaultLoader() Loader {
	return Loader{Files: OSFiles{}, DefaultPaths: []string{
		"/etc/kubernetes/cni/net.d/plexus-ipam.d/plexus-ipam.conf",
		"/etc/cni/net.d/plexus-ipam.d/plexus-ipam.conf",
	}}
}

// netConf is the part of the plugin configuration plexus-ipam reads.
type netConf struct {
	types.NetConf
	IPAM          json.RawMessage `json:"ipam"`
	RuntimeConfig struct {
		IPs []string `json:"ips"`
	} `json:"runtimeConfig"`
	Args struct {
		CNI struct {
			IPs   []string `json:"ips"`
			Claim string   `json:"ipam-claim-reference"`
		} `json:"cni"`
	} `json:"args"`
}

// Load parses stdin (the CNI configuration) with the request's CNI_ARGS.
func (l Loader) Load(stdin []byte, args Args) (*Conf, error) {
	var nc netConf
	if err := json.Unmarshal(stdin, &nc); err != nil {
		return nil, fielderr.New("configuration", "", "not a JSON object: %v", err)
	}
	if len(nc.IPAM) == 0 || string(nc.IPAM) == "null" {
		return nil, fielderr.New("ipam", "", "is required")
	}
	merged, err := l.mergeFile(nc.IPAM)
	if err != nil {
		return nil, err
	}
	c, err := parseIPAM(merged)
	if err != nil {
		return nil, err
	}
	c.CNIVersion, c.Name, c.Pod, c.ValidAttachments = nc.CNIVersion, nc.Name, args, nc.ValidAttachments
	c.Claim = nc.Args.CNI.Claim
	if len(c.DNS.Nameservers) == 0 && c.DNS.Domain == "" && len(c.DNS.Search) == 0 {
		c.DNS = nc.DNS
	}
	want, field := nc.RuntimeConfig.IPs, "runtimeConfig.ips"
	if len(want) == 0 {
		want, field = nc.Args.CNI.IPs, "args.cni.ips"
	}
	if len(want) == 0 {
		want, field = args.IPs, "CNI_ARGS IP"
	}
	if err := c.assignRequested(field, want); err != nil {
		return nil, err
	}
	return c, nil
}

// mergeFile merges the configuration_path file (or the first default file
// that exists) under the NAD's keys: the NAD wins, nested objects are
// merged key by key, and a missing file is not an error.
func (l Loader) mergeFile(ipam json.RawMessage) (json.RawMessage, error) {
	var nadKeys map[string]any
	if err := json.Unmarshal(ipam, &nadKeys); err != nil {
		return nil, fielderr.New("ipam", string(ipam), "not a JSON object")
	}
	paths := l.DefaultPaths
	if p, ok := nadKeys["configuration_path"].(string); ok && p != "" {
		paths = []string{p}
	}
	for _, p := range paths {
		data, err := l.Files.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("ipam.configuration_path %q: %w", p, err)
		}
		var fileKeys map[string]any
		if err := json.Unmarshal(data, &fileKeys); err != nil {
			return nil, fielderr.New("ipam.configuration_path", p, "file is not a JSON object: %v", err)
		}
		mergeUnder(nadKeys, fileKeys)
		break
	}
	return json.Marshal(nadKeys)
}

// mergeUnder copies keys of low that top lacks into top, recursively for
// objects present in both.
func mergeUnder(top, low map[string]any) {
	for k, lv := range low {
		tv, ok := top[k]
		if !ok {
			top[k] = lv
			continue
		}
		tm, tok := tv.(map[string]any)
		lm, lok := lv.(map[string]any)
		if tok && lok {
			mergeUnder(tm, lm)
		}
	}
}

// EtcdEndpoints splits etcd_host ("host:port[,host:port]", schemes
// optional) into client URLs.
func EtcdEndpoints(host string, tls bool) []string {
	scheme := "http://"
	if tls {
		scheme = "https://"
	}
	var eps []string
	for _, h := range strings.Split(host, ",") {
		if h = strings.TrimSpace(h); h == "" {
			continue
		}
		if !strings.Contains(h, "://") {
			h = scheme + h
		}
		eps = append(eps, h)
	}
	return eps
}

// validate reuses the NAD validation of the Whereabouts keys, so the CNI
// binary and `plexusctl lint` report the same problems the same way.
func validate(ipam json.RawMessage) error {
	return nad.ValidateIPAM(ipam, "ipam")
}

// NamesStore reports whether an "ipam" object says itself where its store
// is: kubernetes.kubeconfig, etcd_host, or a configuration_path flat file
// (which may name either). Without any, plexus-ipam depends on the node:
// the flat file plexusd writes (DefaultLoader's paths) or, for requests
// served by plexusd, plexusd's own credentials; elsewhere its ADD fails
// with code 7. Input that is not an object names no store.
func NamesStore(ipam json.RawMessage) bool {
	var raw struct {
		Kubernetes struct {
			Kubeconfig string `json:"kubeconfig"`
		} `json:"kubernetes"`
		EtcdHost          string `json:"etcd_host"`
		ConfigurationPath string `json:"configuration_path"`
	}
	if json.Unmarshal(ipam, &raw) != nil {
		return false
	}
	return raw.Kubernetes.Kubeconfig != "" || raw.EtcdHost != "" || raw.ConfigurationPath != ""
}

// NoStoreHint explains what a configuration without a store relies on
// (lint, the webhook and doctor say it the same way).
const NoStoreHint = "names no store (kubernetes.kubeconfig, etcd_host or configuration_path): " +
	"plexus-ipam then uses the defaults plexusd writes on each node (plexus-ipam.d/plexus-ipam.conf in the CNI conf dir); " +
	"on a node without them its ADD fails with code 7"

// SpaceName names an address space for people: its network_name
// ("default" when empty), with "@<CIDR>" for a range of its own
// (enable_overlapping_ranges false).
func SpaceName(space string) string {
	name := strings.TrimPrefix(space, "net:")
	name, cidr, _ := strings.Cut(name, " range:")
	if name == "" {
		name = "default"
	}
	if cidr != "" {
		name += "@" + cidr
	}
	return name
}
