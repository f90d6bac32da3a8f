package nad

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/containernetworking/cni/pkg/version"

	"github.com/plexus-cni/plexus/pkg/fielderr"
)

// DefaultCNIVersion is the cniVersion given to configurations that have
// none (see the package documentation).
const DefaultCNIVersion = "0.3.1"

// networkNameRE is the CNI network name syntax (SPEC "name", libcni).
var networkNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`)

// Parse validates a NAD's spec.config text and normalises it into a
// Delegate. nadName is injected as the network name when the config has
// none (or an empty one). Errors are *fielderr.Error values whose Field
// starts with "spec.config".
func Parse(config []byte, nadName string) (*Delegate, error) {
	return parse(config, nadName, fieldRoot{whole: "spec.config", prefix: "spec.config"})
}

// ParseFile reads and validates a CNI configuration file (.conf, .json or
// .conflist). Field names in errors start with the path.
func ParseFile(path string) (*Delegate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CNI config %q: %w", path, err)
	}
	d, err := parse(b, "", fieldRoot{whole: path, prefix: path + ": "})
	if err != nil {
		return nil, err
	}
	d.Source = path
	return d, nil
}

// fieldRoot names the configuration in errors: whole is the config itself,
// prefix starts the paths of keys inside it ("spec.config" gives
// "spec.config.type", "x.conf: " gives "x.conf: type").
type fieldRoot struct{ whole, prefix string }

func (r fieldRoot) at(sub string) string { return joinField(r.prefix, sub) }

// joinField appends a key to a field path.
func joinField(field, key string) string {
	if field == "" || strings.HasSuffix(field, ": ") {
		return field + key
	}
	return field + "." + key
}

func parse(config []byte, nadName string, root fieldRoot) (*Delegate, error) {
	top, err := decodeTop(config, root)
	if err != nil {
		return nil, err
	}
	plugins, err := pluginObjects(top, root)
	if err != nil {
		return nil, err
	}
	name, err := networkName(top, nadName, root)
	if err != nil {
		return nil, err
	}
	if err := defaultVersion(top, root); err != nil {
		return nil, err
	}
	d := &Delegate{Name: name, Capabilities: map[string]bool{}, Source: nadName}
	for _, p := range plugins {
		if err := inspectPlugin(p, d); err != nil {
			return nil, err
		}
	}
	if err := finish(top, plugins, root, d); err != nil {
		return nil, err
	}
	return d, nil
}

// decodeTop decodes the configuration object, naming the position of
// syntax errors.
func decodeTop(config []byte, root fieldRoot) (object, error) {
	var m map[string]json.RawMessage
	err := json.Unmarshal(config, &m)
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		line, col := position(config, syn.Offset-1)
		return object{}, fielderr.New(root.whole, "", "invalid JSON at line %d, column %d: %v", line, col, err)
	case err != nil || m == nil:
		return object{}, fielderr.New(root.whole, "", "must be a JSON object (a CNI plugin configuration or configuration list)")
	}
	return object{raw: m, field: root.prefix}, nil
}

// position converts a byte offset into a 1-based line and column (of the
// byte at offset).
func position(b []byte, offset int64) (line, col int) {
	offset = min(max(offset, 0), int64(len(b)))
	line, col = 1, 1
	for _, c := range b[:offset] {
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

// networkName returns the config's name, injecting nadName when it is
// missing or empty.
func networkName(top object, nadName string, root fieldRoot) (string, error) {
	name, err := top.str("name")
	if err != nil {
		return "", fielderr.New(root.at("name"), string(top.raw["name"]), "must be a string")
	}
	if name == "" {
		name = nadName
		top.raw["name"], _ = json.Marshal(name)
	}
	if name == "" {
		return "", fielderr.New(root.at("name"), "", "is required")
	}
	if !networkNameRE.MatchString(name) {
		return "", fielderr.New(root.at("name"), name,
			"must start with a letter or digit and contain only letters, digits, '_', '.' and '-'")
	}
	return name, nil
}

// defaultVersion sets a missing cniVersion and checks a present one.
func defaultVersion(top object, root fieldRoot) error {
	v, err := top.str("cniVersion")
	if err != nil {
		return fielderr.New(root.at("cniVersion"), string(top.raw["cniVersion"]), "must be a string")
	}
	if v == "" {
		top.raw["cniVersion"], _ = json.Marshal(DefaultCNIVersion)
		return nil
	}
	supported := version.All.SupportedVersions()
	if !slices.Contains(supported, v) {
		return fielderr.New(root.at("cniVersion"), v, "unsupported CNI version; want one of %s",
			strings.Join(supported, ", "))
	}
	return nil
}
