package install

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// SelfType is the plugin type of plexus; a configuration holding a plugin
// of this type is never taken as the primary (plexus never wraps itself).
const SelfType = "plexus"

// DefaultConfName is the file plexusd writes; it sorts before the usual
// primaries ("10-flannel.conflist"), so the runtime picks it.
const DefaultConfName = "00-plexus.conflist"

// ErrNoPrimary means the conf dir holds no primary configuration yet.
var ErrNoPrimary = errors.New("no primary CNI configuration")

// ErrUnreadablePrimary means the primary exists but cannot be used.
var ErrUnreadablePrimary = errors.New("primary CNI configuration unreadable")

// Primary is the node's cluster network configuration that plexus wraps.
type Primary struct {
	Path         string
	CNIVersion   string
	Capabilities map[string]bool
}

// FindPrimary returns the first .conf or .conflist file of dir in
// file-name order that is not own and holds no plexus plugin. When that
// file cannot be read or decoded, the error wraps ErrUnreadablePrimary:
// the next file is not taken instead, it would be the wrong network.
func FindPrimary(dir, own string) (*Primary, error) {
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read conf dir %s: %w", dir, err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.Name() != own && !e.IsDir() && (ext == ".conf" || ext == ".conflist") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, name := range names {
		path := filepath.Join(dir, name)
		p, self, err := readPrimary(path)
		if err != nil {
			return nil, err
		}
		if !self {
			return p, nil
		}
	}
	return nil, fmt.Errorf("%w in %s", ErrNoPrimary, dir)
}

// confFile is the part of a .conf or .conflist that plexusd reads.
type confFile struct {
	CNIVersion   string          `json:"cniVersion"`
	Type         string          `json:"type"`
	Capabilities map[string]bool `json:"capabilities"`
	Plugins      []struct {
		Type         string          `json:"type"`
		Capabilities map[string]bool `json:"capabilities"`
	} `json:"plugins"`
}

// readPrimary decodes path; self reports that it holds a plexus plugin.
func readPrimary(path string) (p *Primary, self bool, err error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %s: %w", ErrUnreadablePrimary, path, err)
	}
	var c confFile
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, false, fmt.Errorf("%w: %s: %w", ErrUnreadablePrimary, path, err)
	}
	p = &Primary{Path: path, CNIVersion: c.CNIVersion, Capabilities: map[string]bool{}}
	types := []string{c.Type}
	addCaps(p.Capabilities, c.Capabilities)
	for _, pl := range c.Plugins {
		types = append(types, pl.Type)
		addCaps(p.Capabilities, pl.Capabilities)
	}
	if c.Type == "" && len(c.Plugins) == 0 {
		return nil, false, fmt.Errorf("%w: %s: neither \"type\" nor \"plugins\" is set", ErrUnreadablePrimary, path)
	}
	for _, t := range types {
		if strings.EqualFold(t, SelfType) {
			return nil, true, nil
		}
	}
	return p, false, nil
}

func addCaps(dst, src map[string]bool) {
	for k, v := range src {
		if v {
			dst[k] = true
		}
	}
}

// ConfOptions shape the plexus configuration file.
type ConfOptions struct {
	// Dir is the runtime's conf dir (/etc/cni/net.d); Name the file in it.
	Dir, Name string
	// NetworkName is the configuration's "name" (default "plexus-network").
	NetworkName string
	// Plugin holds the plexus plugin's keys (kubeconfig, daemonSocket,
	// cniDir, …); type, clusterNetwork and capabilities are set by Render.
	Plugin map[string]any
}

// Path is the file plexusd owns.
func (o ConfOptions) Path() string { return filepath.Join(o.Dir, o.Name) }

// Render returns the plexus configuration list wrapping p.
func Render(o ConfOptions, p *Primary) ([]byte, error) {
	plugin := make(map[string]any, len(o.Plugin)+3)
	for k, v := range o.Plugin {
		plugin[k] = v
	}
	plugin["type"] = SelfType
	plugin["clusterNetwork"] = p.Path
	if len(p.Capabilities) > 0 {
		plugin["capabilities"] = p.Capabilities
	} else {
		delete(plugin, "capabilities")
	}
	version := p.CNIVersion
	if version == "" {
		version = "1.0.0"
	}
	name := o.NetworkName
	if name == "" {
		name = "plexus-network"
	}
	out, err := json.MarshalIndent(map[string]any{
		"cniVersion": version, "name": name, "plugins": []any{plugin},
	}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", o.Path(), err)
	}
	return append(out, '\n'), nil
}
