package lint

import (
	"encoding/json"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	ipamconfig "github.com/plexus-cni/plexus/pkg/ipam/config"
	"github.com/plexus-cni/plexus/pkg/nad"
	"github.com/plexus-cni/plexus/pkg/netselect"
)

// annotations checks the networks and default-network annotations of the
// pod template at tmpl (nil: the object is a pod).
func (l *linter) annotations(n *yaml.Node, tmpl []string, obj *Object, offset int) {
	meta := path(n, append(append([]string{}, tmpl...), "metadata")...)
	prefix := strings.Join(append(append([]string{}, tmpl...), "metadata", "annotations"), ".")
	ann := child(meta, "annotations")
	req := &podRequest{}
	if v, line, ok := l.annotation(ann, netselect.NetworksAnnotation, prefix, obj, offset); ok {
		sels, err := netselect.ParseNetworks(v, obj.Namespace)
		if err != nil {
			l.invalid(obj, line, annotationField(prefix, netselect.NetworksAnnotation), err)
		} else if sels != nil {
			req.networks = annotationAt{value: v, line: line, field: annotationField(prefix, netselect.NetworksAnnotation)}
		}
		obj.Networks = sels
	}
	if v, line, ok := l.annotation(ann, netselect.DefaultNetworkAnnotation, prefix, obj, offset); ok {
		sel, err := netselect.ParseDefaultNetwork(v, l.opts.DefaultNetworkNamespace)
		if err != nil {
			l.invalid(obj, line, annotationField(prefix, netselect.DefaultNetworkAnnotation), err)
		} else if sel != nil {
			req.defaultNetwork = annotationAt{line: line, field: annotationField(prefix, netselect.DefaultNetworkAnnotation)}
		}
		obj.DefaultNetwork = sel
	}
	if req.networks.line > 0 || req.defaultNetwork.line > 0 {
		obj.request = req
	}
	l.misplaced(n, tmpl, obj, offset)
}

// misplaced warns about network annotations on the metadata of a workload
// (or of a CronJob's job template) rather than of its pod template: the
// plugin reads only the pod's, so they select nothing.
func (l *linter) misplaced(n *yaml.Node, tmpl []string, obj *Object, offset int) {
	for i := range tmpl {
		at := append(append([]string{}, tmpl[:i]...), "metadata", "annotations")
		ann := path(n, at...)
		for _, key := range []string{netselect.NetworksAnnotation, netselect.DefaultNetworkAnnotation} {
			if k := keyNode(ann, key); k != nil {
				l.problem(Problem{Line: k.Line + offset, Object: objectLabel(obj), Field: annotationField(strings.Join(at, "."), key), Severity: Warning,
					Message: fmt.Sprintf("is ignored: pods take their networks from %s", strings.Join(append(append([]string{}, tmpl...), "metadata", "annotations"), "."))})
			}
		}
	}
}

// annotation returns the string value and line of one annotation; ok is
// false when it is absent or not a string (then reported).
func (l *linter) annotation(ann *yaml.Node, key, prefix string, obj *Object, offset int) (string, int, bool) {
	k := keyNode(ann, key)
	if k == nil {
		return "", 0, false
	}
	v, ok := stringValue(child(ann, key))
	if !ok {
		l.problem(Problem{Line: k.Line + offset, Object: objectLabel(obj), Field: annotationField(prefix, key),
			Message: "annotation values must be strings (quote the value)"})
	}
	return v, k.Line + offset, ok
}

func annotationField(prefix, key string) string {
	return prefix + "[" + key + "]"
}

func (l *linter) invalid(obj *Object, line int, field string, err error) {
	l.problem(Problem{Line: line, Object: objectLabel(obj), Field: field, Message: err.Error()})
}

// nad parses a NetworkAttachmentDefinition's spec.config.
func (l *linter) nad(n *yaml.Node, obj *Object, offset int) *NADInfo {
	k := keyNode(child(n, "spec"), "config")
	if k == nil {
		return &NADInfo{ConfigFromDisk: true}
	}
	line := k.Line + offset
	config, ok := stringValue(child(child(n, "spec"), "config"))
	if !ok {
		l.problem(Problem{Line: line, Object: objectLabel(obj), Field: "spec.config",
			Message: "must be a string holding the CNI configuration JSON"})
		return nil
	}
	if strings.TrimSpace(config) == "" {
		return &NADInfo{ConfigFromDisk: true}
	}
	d, err := nad.Parse([]byte(config), obj.Name)
	if err != nil {
		l.invalid(obj, line, "spec.config", err)
		return nil
	}
	d.Source = obj.Namespace + "/" + obj.Name
	obj.delegate = d
	l.ipamStores([]byte(config), obj, line)
	return &NADInfo{NetworkName: d.Name, CNIVersion: d.CNIVersion, Types: d.Types, Capabilities: d.CapabilityNames()}
}

// CheckIPAMStore marks the warning about a plexus-ipam configuration that
// names no store (see config.NamesStore).
const CheckIPAMStore = "ipam-store"

// ipamStores warns about every plexus-ipam configuration of a (valid) NAD
// config that names no store: it works only where plexusd wrote its
// defaults, which lint cannot see.
func (l *linter) ipamStores(config []byte, obj *Object, line int) {
	var top struct {
		IPAM    json.RawMessage `json:"ipam"`
		Plugins []struct {
			IPAM json.RawMessage `json:"ipam"`
		} `json:"plugins"`
	}
	if json.Unmarshal(config, &top) != nil {
		return
	}
	check := func(ipam json.RawMessage, field string) {
		var t struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(ipam, &t) != nil || t.Type != ipamconfig.TypePlexus || ipamconfig.NamesStore(ipam) {
			return
		}
		l.problem(Problem{Line: line, Object: objectLabel(obj), Field: field, Severity: Warning, Check: CheckIPAMStore,
			Message: ipamconfig.NoStoreHint})
	}
	if top.Plugins == nil {
		check(top.IPAM, "spec.config.ipam")
	}
	for i, p := range top.Plugins {
		check(p.IPAM, fmt.Sprintf("spec.config.plugins[%d].ipam", i))
	}
}
