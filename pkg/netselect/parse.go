package netselect

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"

	"github.com/plexus-cni/plexus/pkg/fielderr"
)

const (
	networksField       = "networks"
	defaultNetworkField = "default-network"
)

// ParseNetworks parses a k8s.v1.cni.cncf.io/networks annotation value.
// Selections without a namespace get podNamespace. An empty or blank value
// selects nothing (nil, nil). Any invalid element rejects the whole value
// with a *fielderr.Error whose Field names the element, e.g.
// "networks[2].mac".
func ParseNetworks(value, podNamespace string) ([]Selection, error) {
	return parse(value, podNamespace, networksField)
}

// ParseDefaultNetwork parses a v1.multus-cni.io/default-network annotation
// value: the same syntax as the networks annotation, but exactly one
// element. The namespace defaults to defaultNamespace. An empty or blank
// value means "no override" (nil, nil).
func ParseDefaultNetwork(value, defaultNamespace string) (*Selection, error) {
	sels, err := parse(value, defaultNamespace, defaultNetworkField)
	if err != nil || sels == nil {
		return nil, err
	}
	if len(sels) != 1 {
		return nil, fielderr.New(defaultNetworkField, value,
			"must select exactly one network, got %d", len(sels))
	}
	return &sels[0], nil
}

func parse(value, namespace, root string) ([]Selection, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return nil, nil
	}
	var sels []Selection
	var err error
	if strings.ContainsAny(value, `[{"`) {
		sels, err = parseJSON(value, namespace, root)
	} else {
		sels, err = parseComma(value, namespace, root)
	}
	if err != nil {
		return nil, err
	}
	if err := checkUnique(sels, root); err != nil {
		return nil, err
	}
	if len(sels) == 0 {
		return nil, nil
	}
	return sels, nil
}

// parseJSON parses the JSON form: an array of selection objects.
func parseJSON(value, namespace, root string) ([]Selection, error) {
	var elems []json.RawMessage
	if err := json.Unmarshal([]byte(value), &elems); err != nil {
		return nil, fielderr.New(root, value, "not a JSON array of network selection objects: %v", err)
	}
	sels := make([]Selection, 0, len(elems))
	for i, raw := range elems {
		sel, err := parseElement(raw, fmt.Sprintf("%s[%d]", root, i))
		if err != nil {
			return nil, err
		}
		if sel.Namespace == "" {
			sel.Namespace = namespace
		}
		sels = append(sels, sel)
	}
	return sels, nil
}

// checkUnique enforces the annotation-wide rules: explicit interface names
// are unique, and at most one element carries default-route.
func checkUnique(sels []Selection, root string) error {
	ifaces := map[string]int{}
	routeAt := -1
	for i, s := range sels {
		if s.InterfaceName != "" {
			if j, dup := ifaces[s.InterfaceName]; dup {
				return fielderr.New(fmt.Sprintf("%s[%d].interface", root, i), s.InterfaceName,
					"already requested by %s[%d]", root, j)
			}
			ifaces[s.InterfaceName] = i
		}
		if s.DefaultRoute != nil {
			if routeAt >= 0 {
				return fielderr.New(fmt.Sprintf("%s[%d].default-route", root, i), "",
					"only one element may carry default-route, %s[%d] already does", root, routeAt)
			}
			routeAt = i
		}
	}
	return nil
}

// MarshalJSON encodes s as a JSON-form selection element that ParseNetworks
// reads back to an equal Selection; unlike plain encoding it keeps a
// present-but-empty default-route.
func (s Selection) MarshalJSON() ([]byte, error) {
	type plain Selection
	out := struct {
		plain
		DefaultRoute *[]net.IP `json:"default-route,omitempty"`
	}{plain: plain(s)}
	if s.DefaultRoute != nil {
		out.DefaultRoute = &s.DefaultRoute
	}
	return json.Marshal(out)
}
