package install

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/plexus-cni/plexus/pkg/nad"
)

// WrittenType is the plugin type of the configuration plexusd writes: the
// shim, which hands every request to plexusd. A configuration holding a
// plugin of plexus's types (nad.IsSelf) is never taken as the primary
// (plexus never wraps itself).
const WrittenType = nad.ShimType

// DefaultConfName is the file plexusd writes; it sorts before the usual
// primaries ("10-flannel.conflist"), so the runtime picks it.
const DefaultConfName = "00-plexus.conflist"

// ErrNoPrimary means the conf dir holds no primary configuration yet.
var ErrNoPrimary = errors.New("no primary CNI configuration")

// ErrUnreadablePrimary means the primary exists but cannot be used.
var ErrUnreadablePrimary = errors.New("primary CNI configuration unreadable")

// MovedSuffix is appended to the name of a Multus file that a take-over
// moves aside; renaming it back is the rollback. The runtime ignores it
// (it reads only .conf, .conflist and .json).
const MovedSuffix = ".moved-by-plexus"

// Primary is the node's cluster network configuration that plexus wraps.
type Primary struct {
	// Path is the file of the network ("" when Extra names it: a take-over
	// of a Multus configuration whose clusterNetwork is a NAD or network
	// name, or whose delegates embed it).
	Path         string
	CNIVersion   string
	Capabilities map[string]bool
	// Extra are Multus keys carried over by a take-over.
	Extra map[string]json.RawMessage
}

// ReadEntries reads and classifies every configuration file of dir that
// the runtime could use (.conf, .conflist, .json) and every Multus file a
// take-over moved aside (Moved), in file-name order.
func ReadEntries(dir string) ([]Entry, error) {
	files, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read conf dir %s: %w", dir, err)
	}
	var out []Entry
	for _, f := range files {
		name := f.Name()
		moved := strings.HasSuffix(name, MovedSuffix)
		if f.IsDir() || !(moved || isConfName(name)) {
			continue
		}
		e := readEntry(dir, filepath.Join(dir, name), 0)
		if moved && e.Kind != KindMultus {
			continue
		}
		e.Moved = moved
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// isConfName reports whether the runtime reads a file of this name.
func isConfName(name string) bool {
	ext := filepath.Ext(name)
	return ext == ".conf" || ext == ".conflist" || ext == ".json"
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

// readEntry reads and classifies path; depth bounds following a Multus
// file's clusterNetwork to the file it names.
func readEntry(dir, path string, depth int) Entry {
	e := Entry{Name: filepath.Base(path)}
	fail := func(err error) Entry {
		e.Kind, e.Err = KindUnreadable, fmt.Errorf("%w: %s: %w", ErrUnreadablePrimary, path, err)
		return e
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return fail(err)
	}
	var c confFile
	if err := json.Unmarshal(raw, &c); err != nil {
		return fail(err)
	}
	if c.Type == "" && len(c.Plugins) == 0 {
		return fail(errors.New(`neither "type" nor "plugins" is set`))
	}
	p := &Primary{Path: path, CNIVersion: c.CNIVersion, Capabilities: map[string]bool{}}
	types := []string{c.Type}
	addCaps(p.Capabilities, c.Capabilities)
	for _, pl := range c.Plugins {
		types = append(types, pl.Type)
		addCaps(p.Capabilities, pl.Capabilities)
	}
	e.Type = c.Type
	if e.Type == "" {
		e.Type = types[1]
	}
	switch {
	case isMultusType(e.Type):
		e.Kind, e.Multus = KindMultus, readMultus(dir, raw, c, depth)
	case slices.ContainsFunc(types, nad.IsSelf):
		e.Kind = KindSelf
	default:
		e.Kind, e.Primary = KindNetwork, p
	}
	return e
}

// readMultus keeps what a take-over needs of a Multus configuration (a
// conflist's first plugin, or the file itself).
func readMultus(dir string, raw []byte, c confFile, depth int) *MultusConf {
	var top struct {
		Plugins []json.RawMessage `json:"plugins"`
	}
	_ = json.Unmarshal(raw, &top)
	if len(top.Plugins) > 0 {
		raw = top.Plugins[0]
	}
	var keys map[string]json.RawMessage
	_ = json.Unmarshal(raw, &keys)
	m := &MultusConf{Keys: map[string]json.RawMessage{}, CNIVersion: c.CNIVersion, Capabilities: map[string]bool{}}
	addCaps(m.Capabilities, c.Capabilities)
	for _, k := range carriedKeys {
		if v, ok := keys[k]; ok && string(v) != "null" {
			m.Keys[k] = v
		}
	}
	var cluster string
	_ = json.Unmarshal(m.Keys["clusterNetwork"], &cluster)
	if strings.Contains(cluster, "/") && depth < 2 {
		t := readEntry(dir, cluster, depth+1)
		m.Target = &t
		m.WrapsSelf = t.Kind == KindSelf
		delete(m.Keys, "clusterNetwork")
	}
	if cluster == "" {
		var delegates []struct {
			Type    string `json:"type"`
			Plugins []struct {
				Type string `json:"type"`
			} `json:"plugins"`
		}
		_ = json.Unmarshal(m.Keys["delegates"], &delegates)
		if len(delegates) > 0 {
			first := delegates[0].Type
			if first == "" && len(delegates[0].Plugins) > 0 {
				first = delegates[0].Plugins[0].Type
			}
			m.WrapsSelf = nad.IsSelf(first) || isMultusType(first)
		}
	}
	return m
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
	for k, v := range p.Extra {
		if _, set := plugin[k]; !set || k == "clusterNetwork" || k == "delegates" {
			plugin[k] = v
		}
	}
	plugin["type"] = WrittenType
	if p.Path != "" {
		plugin["clusterNetwork"] = p.Path
		delete(plugin, "delegates")
	}
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
