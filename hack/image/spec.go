package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Spec describes an image: its files, its configuration, and the build
// arguments its labels may name (like a Dockerfile's ARG, ${NAME}).
type Spec struct {
	// Args are the build arguments with their defaults.
	Args map[string]string `json:"args"`
	// Files are the image's files and symbolic links; parent directories
	// are implied.
	Files      []File            `json:"files"`
	Env        []string          `json:"env"`
	Entrypoint []string          `json:"entrypoint"`
	Labels     map[string]string `json:"labels"`
}

// File is one entry of the image's single layer: a regular file copied
// from Source (relative to the build root) or a symbolic link to Link.
type File struct {
	// Path is absolute and clean, as in the image.
	Path   string `json:"path"`
	Source string `json:"source,omitempty"`
	Link   string `json:"link,omitempty"`
	// Mode is octal ("0755"); default "0644". Files only.
	Mode string `json:"mode,omitempty"`
}

// LoadSpec reads and validates a spec file.
func LoadSpec(file string) (*Spec, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("image spec: %w", err)
	}
	var s Spec
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("image spec %s: %w", file, err)
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("image spec %s: %w", file, err)
	}
	return &s, nil
}

// Validate checks every file entry and that the labels name only declared
// arguments.
func (s *Spec) Validate() error {
	seen := map[string]bool{}
	for i, f := range s.Files {
		if err := f.validate(); err != nil {
			return fmt.Errorf("files[%d]: %w", i, err)
		}
		if seen[f.Path] {
			return fmt.Errorf("files[%d].path %q: listed twice", i, f.Path)
		}
		seen[f.Path] = true
	}
	for _, k := range sortedKeys(s.Labels) {
		if _, err := expand(s.Labels[k], s.Args); err != nil {
			return fmt.Errorf("labels[%q]: %w", k, err)
		}
	}
	return nil
}

func (f File) validate() error {
	if !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == "/" {
		return fmt.Errorf("path %q: want an absolute, clean file path", f.Path)
	}
	if (f.Source == "") == (f.Link == "") {
		return fmt.Errorf("path %q: want exactly one of source and link", f.Path)
	}
	if f.Link != "" && f.Mode != "" {
		return fmt.Errorf("path %q: mode %q on a link", f.Path, f.Mode)
	}
	if _, err := f.FileMode(); err != nil {
		return err
	}
	return nil
}

// FileMode is the entry's permission bits.
func (f File) FileMode() (int64, error) {
	if f.Link != "" {
		return 0o777, nil
	}
	if f.Mode == "" {
		return 0o644, nil
	}
	m, err := strconv.ParseUint(f.Mode, 8, 32)
	if err != nil || m > 0o7777 {
		return 0, fmt.Errorf("mode %q of %s: want octal permission bits like \"0755\"", f.Mode, f.Path)
	}
	return int64(m), nil
}

// Resolve returns the labels with every ${NAME} replaced: by overrides
// first, then by the spec's defaults. An override of an undeclared
// argument is an error, as a typo would otherwise go unnoticed.
func (s *Spec) Resolve(overrides map[string]string) (map[string]string, error) {
	args := map[string]string{}
	for k, v := range s.Args {
		args[k] = v
	}
	for _, k := range sortedKeys(overrides) {
		if _, ok := s.Args[k]; !ok {
			return nil, fmt.Errorf("build argument %q: not declared in the spec's args", k)
		}
		args[k] = overrides[k]
	}
	out := map[string]string{}
	for k, v := range s.Labels {
		e, err := expand(v, args)
		if err != nil {
			return nil, fmt.Errorf("labels[%q]: %w", k, err)
		}
		out[k] = e
	}
	return out, nil
}

// expand replaces ${NAME} and $NAME from args; an undeclared name is an
// error.
func expand(v string, args map[string]string) (string, error) {
	var missing []string
	out := os.Expand(v, func(name string) string {
		val, ok := args[name]
		if !ok {
			missing = append(missing, name)
		}
		return val
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("value %q names undeclared argument %q", v, missing[0])
	}
	return out, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
