package nad

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ErrNotFound reports that a network does not exist: no CNI configuration
// matched, or (wrapped by the resolvers that read the API) no
// NetworkAttachmentDefinition of that name.
var ErrNotFound = errors.New("not found")

// SelfType is the plugin type of plexus itself and ShimType the one of its
// daemon-mode shim (plexus-shim, in the configuration plexusd writes);
// FirstInDir skips configurations that contain either (IsSelf), so plexus
// never picks its own file as the cluster network.
const (
	SelfType = "plexus"
	ShimType = "plexus-shim"
)

// IsSelf reports whether a plugin type is plexus's own (SelfType or
// ShimType, in any case).
func IsSelf(pluginType string) bool {
	return strings.EqualFold(pluginType, SelfType) || strings.EqualFold(pluginType, ShimType)
}

// confExtensions are the file name extensions of CNI configuration files.
var confExtensions = []string{".conf", ".conflist", ".json"}

// FromNAD returns the delegate of a NAD: its spec.config when non-empty,
// else the configuration file in confDir named after the NAD (spec A.2).
// Either way the delegate carries the NAD's resourceName annotation.
func FromNAD(n *NetworkAttachmentDefinition, confDir string) (*Delegate, error) {
	var (
		d   *Delegate
		err error
	)
	if strings.TrimSpace(n.Spec.Config) == "" {
		d, err = FindInDir(confDir, n.Name)
	} else if d, err = Parse([]byte(n.Spec.Config), n.Name); err == nil {
		d.Source = n.Namespace + "/" + n.Name
	}
	if err != nil {
		return nil, err
	}
	d.ResourceName = strings.TrimSpace(n.Annotations[ResourceNameAnnotation])
	return d, nil
}

// FindInDir returns the configuration named name in confDir: a
// configuration list whose "name" matches, else a single plugin
// configuration whose "name" matches (spec A.2), files in name order.
// Files that cannot be read or decoded are skipped; a matching file that
// is invalid is an error. No match (or no directory) wraps ErrNotFound.
func FindInDir(confDir, name string) (*Delegate, error) {
	files, err := confFiles(confDir)
	if err != nil {
		return nil, err
	}
	for _, wantList := range []bool{true, false} {
		for _, f := range files {
			top, ok := peek(f)
			if !ok || top.isList != wantList || top.name != name {
				continue
			}
			return ParseFile(f)
		}
	}
	return nil, fmt.Errorf("network %q in %s: %w", name, confDir, ErrNotFound)
}

// FirstInDir returns the first configuration file of dir in name order,
// skipping plexus's own configuration (SelfType). None wraps ErrNotFound.
func FirstInDir(dir string) (*Delegate, error) {
	files, err := confFiles(dir)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		d, err := ParseFile(f)
		if err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(d.Types, IsSelf) {
			return d, nil
		}
	}
	return nil, fmt.Errorf("CNI configuration file in %s: %w", dir, ErrNotFound)
}

// confFiles lists the CNI configuration files of dir in name order.
func confFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("CNI configuration directory %s: %w", dir, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read CNI configuration directory %s: %w", dir, err)
	}
	var files []string
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.Type().IsRegular() || e.Type()&fs.ModeSymlink != 0 {
			for _, want := range confExtensions {
				if ext == want {
					files = append(files, filepath.Join(dir, e.Name()))
				}
			}
		}
	}
	return files, nil
}

// peeked is what FindInDir needs to know of a file before parsing it.
type peeked struct {
	name   string
	isList bool
}

// peek reads the name of a configuration file and whether it is a list.
func peek(path string) (peeked, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return peeked{}, false
	}
	var top struct {
		Name    string          `json:"name"`
		Type    string          `json:"type"`
		Plugins json.RawMessage `json:"plugins"`
	}
	if json.Unmarshal(b, &top) != nil {
		return peeked{}, false
	}
	isList := top.Plugins != nil
	if !isList && top.Type == "" {
		return peeked{}, false
	}
	return peeked{name: top.Name, isList: isList}, true
}
