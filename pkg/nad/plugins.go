package nad

import (
	"encoding/json"
	"fmt"
	"maps"
	"sort"
	"strings"

	"github.com/containernetworking/cni/libcni"

	"github.com/plexus-cni/plexus/pkg/fielderr"
)

// pluginObjects returns the plugin objects of a list, or the config itself
// when it is a single plugin.
func pluginObjects(top object, root fieldRoot) ([]object, error) {
	if !top.has("plugins") {
		if !top.has("type") {
			return nil, fielderr.New(root.at("type"), "",
				`is required (a plugin configuration needs "type", a configuration list needs "plugins")`)
		}
		// A copy: name and cniVersion injected into the list stay out of
		// the plugin object, which is kept as written.
		return []object{{raw: maps.Clone(top.raw), field: top.field}}, nil
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(top.raw["plugins"], &raws); err != nil {
		return nil, fielderr.New(root.at("plugins"), string(top.raw["plugins"]), "must be an array of plugin objects")
	}
	if len(raws) == 0 {
		return nil, fielderr.New(root.at("plugins"), "", "must list at least one plugin")
	}
	out := make([]object, 0, len(raws))
	for i, raw := range raws {
		o, err := newObject(raw, fmt.Sprintf("%s[%d]", root.at("plugins"), i))
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// inspectPlugin validates one plugin object and records its type and
// capabilities in d.
func inspectPlugin(p object, d *Delegate) error {
	typ, err := p.str("type")
	if err != nil {
		return err
	}
	if typ == "" {
		return fielderr.New(p.sub("type"), "", "is required")
	}
	if strings.ContainsAny(typ, `/\`) {
		return fielderr.New(p.sub("type"), typ, "must be a plugin binary name, not a path")
	}
	var caps map[string]bool
	if err := p.decode("capabilities", "an object of booleans", &caps); err != nil {
		return err
	}
	for c, on := range caps {
		if on {
			d.Capabilities[c] = true
		}
	}
	if p.has("ipam") {
		if err := ValidateIPAM(p.raw["ipam"], p.sub("ipam")); err != nil {
			return err
		}
	}
	d.Types = append(d.Types, typ)
	return nil
}

// finish builds the normalised conflist, checks libcni accepts it and
// fills the remaining Delegate fields.
func finish(top object, plugins []object, root fieldRoot, d *Delegate) error {
	list := top.raw
	if !top.has("plugins") {
		single, err := json.Marshal(plugins[0].raw)
		if err != nil {
			return fmt.Errorf("encode %s: %w", root.whole, err)
		}
		list = map[string]json.RawMessage{
			"cniVersion": top.raw["cniVersion"],
			"name":       top.raw["name"],
			"plugins":    json.RawMessage("[" + string(single) + "]"),
		}
	}
	b, err := json.Marshal(list)
	if err != nil {
		return fmt.Errorf("encode %s: %w", root.whole, err)
	}
	conf, err := libcni.ConfListFromBytes(b)
	if err != nil {
		return fielderr.New(root.whole, "", "not a valid CNI configuration: %v", err)
	}
	d.Conflist, d.CNIVersion = b, conf.CNIVersion
	return nil
}

// CapabilityNames returns the sorted names of the capabilities declared.
func (d *Delegate) CapabilityNames() []string {
	out := make([]string, 0, len(d.Capabilities))
	for c := range d.Capabilities {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}
