package main

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// packLayout writes the OCI image layout in dir as the tar archive out
// (what `ctr images import` and `podman load` read): entries in the
// walk's lexical order, owned by 0:0, every time set to mtime. The
// archive replaces out only once it is complete. It returns its size.
func packLayout(dir, out string, mtime time.Time) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(out), ".archive-")
	if err != nil {
		return 0, fmt.Errorf("archive: %w", err)
	}
	defer os.Remove(tmp.Name())
	err = writeLayoutTar(tmp, dir, mtime)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), out)
	}
	if err != nil {
		return 0, fmt.Errorf("archive %s: %w", out, err)
	}
	fi, err := os.Stat(out)
	if err != nil {
		return 0, fmt.Errorf("archive %s: %w", out, err)
	}
	return fi.Size(), nil
}

func writeLayoutTar(w io.Writer, dir string, mtime time.Time) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		return addLayoutEntry(tw, dir, p, d, mtime)
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

func addLayoutEntry(tw *tar.Writer, dir, p string, d fs.DirEntry, mtime time.Time) error {
	rel, err := filepath.Rel(dir, p)
	if err != nil {
		return err
	}
	hdr := &tar.Header{Name: filepath.ToSlash(rel), ModTime: mtime, Mode: 0o644, Typeflag: tar.TypeReg}
	if d.IsDir() {
		hdr.Name, hdr.Mode, hdr.Typeflag = hdr.Name+"/", 0o755, tar.TypeDir
		return tw.WriteHeader(hdr)
	}
	if !d.Type().IsRegular() {
		return fmt.Errorf("%s: not a regular file in the layout", rel)
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	hdr.Size = fi.Size()
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}
