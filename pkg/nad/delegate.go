package nad

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/containernetworking/cni/libcni"
)

// List returns the delegate's configuration as a libcni list.
func (d *Delegate) List() (*libcni.NetworkConfigList, error) {
	l, err := libcni.ConfListFromBytes(d.Conflist)
	if err != nil {
		return nil, fmt.Errorf("network %q from %s: %w", d.Name, d.Source, err)
	}
	return l, nil
}

// WithCNIArgs returns a copy of d whose every plugin has args merged into
// its "args"."cni" object: keys from args overwrite, other keys of "args"
// and "args.cni" are kept. With no args it returns d itself.
func (d *Delegate) WithCNIArgs(args map[string]any) (*Delegate, error) {
	if len(args) == 0 {
		return d, nil
	}
	return d.eachPlugin(func(p json.RawMessage) (json.RawMessage, error) { return mergeCNIArgs(p, args) })
}

// WithPluginKeys returns a copy of d whose every plugin has the top-level
// keys set (overwritten when present): how a meta-plugin hands a device to
// each plugin of the list ("deviceID", "pciBusID").
func (d *Delegate) WithPluginKeys(keys map[string]any) (*Delegate, error) {
	return d.eachPlugin(func(p json.RawMessage) (json.RawMessage, error) {
		obj, err := rawObject(p, "plugin")
		if err != nil {
			return nil, err
		}
		for k, v := range keys {
			if obj[k], err = json.Marshal(v); err != nil {
				return nil, fmt.Errorf("encode key %q: %w", k, err)
			}
		}
		return json.Marshal(obj)
	})
}

// eachPlugin returns a copy of d with every plugin of its list replaced by
// edit's answer.
func (d *Delegate) eachPlugin(edit func(json.RawMessage) (json.RawMessage, error)) (*Delegate, error) {
	var list map[string]json.RawMessage
	if err := json.Unmarshal(d.Conflist, &list); err != nil {
		return nil, fmt.Errorf("network %q: decode conflist: %w", d.Name, err)
	}
	var plugins []json.RawMessage
	if err := json.Unmarshal(list["plugins"], &plugins); err != nil {
		return nil, fmt.Errorf("network %q: decode plugins: %w", d.Name, err)
	}
	for i := range plugins {
		edited, err := edit(plugins[i])
		if err != nil {
			return nil, fmt.Errorf("network %q: plugins[%d]: %w", d.Name, i, err)
		}
		plugins[i] = edited
	}
	var err error
	if list["plugins"], err = json.Marshal(plugins); err != nil {
		return nil, fmt.Errorf("network %q: encode plugins: %w", d.Name, err)
	}
	out := *d
	if out.Conflist, err = json.Marshal(list); err != nil {
		return nil, fmt.Errorf("network %q: encode conflist: %w", d.Name, err)
	}
	out.Types = slices.Clone(d.Types)
	out.Capabilities = maps.Clone(d.Capabilities)
	return &out, nil
}

// mergeCNIArgs merges args into plugin["args"]["cni"].
func mergeCNIArgs(plugin json.RawMessage, args map[string]any) (json.RawMessage, error) {
	var p map[string]json.RawMessage
	if err := json.Unmarshal(plugin, &p); err != nil {
		return nil, fmt.Errorf("decode plugin: %w", err)
	}
	outer, err := rawObject(p["args"], "args")
	if err != nil {
		return nil, err
	}
	cni, err := rawObject(outer["cni"], "args.cni")
	if err != nil {
		return nil, err
	}
	for k, v := range args {
		if cni[k], err = json.Marshal(v); err != nil {
			return nil, fmt.Errorf("encode cni-args key %q: %w", k, err)
		}
	}
	if outer["cni"], err = json.Marshal(cni); err != nil {
		return nil, fmt.Errorf("encode args.cni: %w", err)
	}
	if p["args"], err = json.Marshal(outer); err != nil {
		return nil, fmt.Errorf("encode args: %w", err)
	}
	return json.Marshal(p)
}

// rawObject decodes an optional JSON object; absent or null gives an empty
// map.
func rawObject(raw json.RawMessage, field string) (map[string]json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	if len(raw) == 0 || string(raw) == "null" {
		return m, nil
	}
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, fmt.Errorf("%s: invalid value %s: must be a JSON object", field, raw)
	}
	return m, nil
}
