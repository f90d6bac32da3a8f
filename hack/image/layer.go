package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// layerTar returns the uncompressed tar stream of the image's one layer:
// the files and their parent directories, sorted by path, owned by 0:0,
// every time set to mtime, so that the same inputs give the same bytes.
// Sources are read relative to root.
func layerTar(files []File, root string, mtime time.Time) ([]byte, error) {
	entries, err := withParents(files)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range entries {
		if err := writeEntry(tw, f, root, mtime); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	return buf.Bytes(), nil
}

// withParents adds an entry (Source and Link empty) for every parent
// directory and sorts all by path: a parent sorts before its children.
func withParents(files []File) ([]File, error) {
	byPath := map[string]File{}
	for _, f := range files {
		byPath[f.Path] = f
	}
	for _, f := range files {
		for dir := path.Dir(f.Path); dir != "/"; dir = path.Dir(dir) {
			if other, ok := byPath[dir]; ok && (other.Source != "" || other.Link != "") {
				return nil, fmt.Errorf("path %q: its parent %q is a file", f.Path, dir)
			}
			byPath[dir] = File{Path: dir}
		}
	}
	out := make([]File, 0, len(byPath))
	for _, f := range byPath {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func writeEntry(tw *tar.Writer, f File, root string, mtime time.Time) error {
	hdr := &tar.Header{
		Name:    strings.TrimPrefix(f.Path, "/"),
		ModTime: mtime,
	}
	var data []byte
	switch {
	case f.Link != "":
		hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, f.Link, 0o777
	case f.Source != "":
		src := filepath.Join(root, filepath.FromSlash(f.Source))
		fi, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("source %q of %s: %w", f.Source, f.Path, err)
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("source %q of %s: not a regular file (%s)", f.Source, f.Path, fi.Mode().Type())
		}
		if data, err = os.ReadFile(src); err != nil {
			return fmt.Errorf("source %q of %s: %w", f.Source, f.Path, err)
		}
		mode, err := f.FileMode()
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, mode, int64(len(data))
	default:
		hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, hdr.Name+"/", 0o755
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("layer entry %s: %w", f.Path, err)
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("layer entry %s: %w", f.Path, err)
	}
	return nil
}
