package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/plexus-cni/plexus/test/devices/testnic"
)

// annotateDeviceInfo adds testnic.IfnameKey: ifName to the top-level object
// of the device-info file at path, so a test sees that the plugin received
// the path and could update the file (spec A.9 allows plugins to). A path
// that is empty or names no file is left alone; the file keeps its mode.
func annotateDeviceInfo(path, ifName string) error {
	if path == "" {
		return nil
	}
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("CNIDeviceInfoFile %q: %w", path, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read CNIDeviceInfoFile %q: %w", path, err)
	}
	out, err := withKey(data, testnic.IfnameKey, ifName)
	if err != nil {
		return fmt.Errorf("CNIDeviceInfoFile %q: %w", path, err)
	}
	return replaceFile(path, out, info.Mode().Perm())
}

// withKey returns the JSON object data with key set to value; other keys
// keep their raw values.
func withKey(data []byte, key, value string) ([]byte, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if obj == nil {
		return nil, errors.New("not a JSON object: null")
	}
	raw, err := json.Marshal(value)
	if err != nil {
		return nil, err
	}
	obj[key] = raw
	return json.Marshal(obj)
}

// replaceFile writes data to path atomically: a temporary file in the same
// directory renamed over it.
func replaceFile(path string, data []byte, mode fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("update %q: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp.Name(), mode)); err != nil {
		return fmt.Errorf("update %q: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("update %q: %w", path, err)
	}
	return nil
}
