// Package install puts plexus on a node and keeps it there: it copies the
// plugin binaries into the CNI bin directory, writes the plexus CNI
// configuration wrapping the node's primary network, and writes the
// plugin's kubeconfig from the service-account token, rewriting the last
// two whenever their inputs change. Every file is replaced atomically
// (temporary file in the same directory, fsync, rename, fsync of the
// directory), so a reader — the runtime, a running plugin — only ever sees
// a complete old or a complete new file, and a binary that is being
// executed is replaced without "text file busy".
package install

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// writeAtomic replaces path with data, mode perm. The temporary name starts
// with a dot and ends in .tmp, so no runtime takes it for a configuration.
func writeAtomic(path string, data []byte, perm os.FileMode) error {
	return replaceAtomic(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

func replaceAtomic(path string, perm os.FileMode, fill func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return fmt.Errorf("create a temporary file for %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := fill(f); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp, path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// sameContent reports whether path holds exactly data.
func sameContent(path string, data []byte) bool {
	cur, err := os.ReadFile(path)
	return err == nil && bytes.Equal(cur, data)
}

// Binaries copies each named file present in srcDir into dstDir atomically
// (mode 0755) unless dstDir already holds identical content; files missing
// from srcDir are skipped. It returns the names it installed.
func Binaries(srcDir, dstDir string, names []string) ([]string, error) {
	if err := os.MkdirAll(dstDir, 0o755); err != nil {
		return nil, fmt.Errorf("bin dir %s: %w", dstDir, err)
	}
	var installed []string
	for _, name := range names {
		src := filepath.Join(srcDir, name)
		changed, err := installBinary(src, filepath.Join(dstDir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return installed, err
		}
		if changed {
			installed = append(installed, name)
		}
	}
	return installed, nil
}

func installBinary(src, dst string) (bool, error) {
	data, err := os.ReadFile(src)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, err
		}
		return false, fmt.Errorf("read binary %s: %w", src, err)
	}
	if sameContent(dst, data) {
		return false, nil
	}
	if err := writeAtomic(dst, data, 0o755); err != nil {
		return false, fmt.Errorf("install %s: %w", dst, err)
	}
	return true, nil
}
