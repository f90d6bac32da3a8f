package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

const testName = "plexus.local/plexus:v1.2.3-4-gabcdef0"

// fixture writes a source file for every file of plexus.json under a new
// root, with content naming it, and returns the spec and the root.
func fixture(t *testing.T) (*Spec, string) {
	t.Helper()
	spec, err := LoadSpec("plexus.json")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for _, f := range spec.Files {
		src := filepath.Join(root, filepath.FromSlash(f.Source))
		if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(src, []byte("binary "+f.Path+"\n"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return spec, root
}

func options(spec *Spec, root, out string) Options {
	return Options{
		Spec: spec, Root: root, Out: out, Name: testName,
		Args:     map[string]string{"VERSION": "v1.2.3-4-gabcdef0", "REVISION": "abcdef0123"},
		Created:  time.Unix(1700000000, 0),
		Platform: v1.Platform{OS: "linux", Architecture: "amd64"},
	}
}

func build(t *testing.T, o Options) (Result, [32]byte) {
	t.Helper()
	res, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(o.Out)
	if err != nil {
		t.Fatal(err)
	}
	return res, sha256.Sum256(raw)
}

func TestSameInputsGiveTheSameArchive(t *testing.T) {
	spec, root := fixture(t)
	first, firstSum := build(t, options(spec, root, filepath.Join(t.TempDir(), "a", "plexus.tar")))

	// The sources' own times, modes and the output path do not count.
	later := time.Now().Add(time.Hour)
	for _, f := range spec.Files {
		src := filepath.Join(root, f.Source)
		if err := os.Chtimes(src, later, later); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(src, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	second, secondSum := build(t, options(spec, root, filepath.Join(t.TempDir(), "b", "other.tar")))
	if first.Digest != second.Digest || firstSum != secondSum {
		t.Fatalf("same inputs, different results: digests %s / %s, archives %x / %x", first.Digest, second.Digest, firstSum, secondSum)
	}

	// A changed input changes the digest.
	if err := os.WriteFile(filepath.Join(root, spec.Files[0].Source), []byte("changed"), 0o755); err != nil {
		t.Fatal(err)
	}
	changed, _ := build(t, options(spec, root, filepath.Join(t.TempDir(), "plexus.tar")))
	if changed.Digest == first.Digest {
		t.Errorf("a changed binary kept the digest %s", first.Digest)
	}
	o := options(spec, root, filepath.Join(t.TempDir(), "plexus.tar"))
	o.Args = map[string]string{"VERSION": "v9"}
	if relabeled, _ := build(t, o); relabeled.Digest == changed.Digest {
		t.Errorf("a changed version label kept the digest %s", changed.Digest)
	}
}

func TestArchiveIsAnOCILayoutNamingTheImage(t *testing.T) {
	spec, root := fixture(t)
	o := options(spec, root, filepath.Join(t.TempDir(), "plexus.tar"))
	res, _ := build(t, o)

	dir := untar(t, o.Out)
	for _, top := range []string{"oci-layout", "index.json"} {
		if _, err := os.Stat(filepath.Join(dir, top)); err != nil {
			t.Errorf("archive has no %s at its top (an importer needs it): %v", top, err)
		}
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatalf("OCI layout does not validate: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("index has %d manifests, want 1", len(im.Manifests))
	}
	desc := im.Manifests[0]
	want := map[string]string{AnnotationImageName: testName, AnnotationRefName: "v1.2.3-4-gabcdef0"}
	for k, v := range want {
		if desc.Annotations[k] != v {
			t.Errorf("index annotation %s = %q, want %q", k, desc.Annotations[k], v)
		}
	}
	if desc.Digest != res.Digest || desc.MediaType != types.OCIManifestSchema1 {
		t.Errorf("index names %s (%s), want %s (%s)", desc.Digest, desc.MediaType, res.Digest, types.OCIManifestSchema1)
	}
	if desc.Platform == nil || desc.Platform.OS != "linux" || desc.Platform.Architecture != "amd64" {
		t.Errorf("index platform %+v, want linux/amd64", desc.Platform)
	}
	img, err := idx.Image(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	checkConfig(t, img, o)
	checkFiles(t, img, spec, root, o.Created)
}

func checkConfig(t *testing.T, img v1.Image, o Options) {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cf.Config.Entrypoint, " "); got != "/usr/local/bin/plexusd" {
		t.Errorf("entrypoint %q, want /usr/local/bin/plexusd", got)
	}
	if got := strings.Join(cf.Config.Env, " "); got != "PATH=/usr/local/bin" {
		t.Errorf("env %q, want PATH=/usr/local/bin", got)
	}
	for k, v := range map[string]string{
		"org.opencontainers.image.version":  "v1.2.3-4-gabcdef0",
		"org.opencontainers.image.revision": "abcdef0123",
		"org.opencontainers.image.source":   "https://github.com/plexus-cni/plexus",
	} {
		if cf.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, cf.Config.Labels[k], v)
		}
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" || !cf.Created.Time.Equal(o.Created) {
		t.Errorf("config %s/%s created %v, want linux/amd64 created %v", cf.OS, cf.Architecture, cf.Created, o.Created)
	}
}

// checkFiles compares the layer's entries with the spec: paths, parent
// directories, modes, owner, times and contents.
func checkFiles(t *testing.T, img v1.Image, spec *Spec, root string, mtime time.Time) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %d (%v), want 1", len(layers), err)
	}
	if mt, _ := layers[0].MediaType(); mt != types.OCILayer {
		t.Errorf("layer media type %s, want %s", mt, types.OCILayer)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	want := map[string]string{"usr/": "dir", "usr/local/": "dir", "usr/local/bin/": "dir"}
	for _, f := range spec.Files {
		content, err := os.ReadFile(filepath.Join(root, f.Source))
		if err != nil {
			t.Fatal(err)
		}
		want[strings.TrimPrefix(f.Path, "/")] = string(content)
	}
	var order []string
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		order = append(order, hdr.Name)
		got := "dir"
		if hdr.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			got = string(b)
		}
		w, ok := want[hdr.Name]
		switch {
		case !ok:
			t.Errorf("layer has unexpected %s", hdr.Name)
		case got != w:
			t.Errorf("layer %s holds %q, want %q", hdr.Name, got, w)
		case hdr.Mode != 0o755 || hdr.Uid != 0 || hdr.Gid != 0 || !hdr.ModTime.Equal(mtime):
			t.Errorf("layer %s: mode %o owner %d:%d time %v, want 755 0:0 %v", hdr.Name, hdr.Mode, hdr.Uid, hdr.Gid, hdr.ModTime, mtime)
		}
		delete(want, hdr.Name)
	}
	if len(want) > 0 {
		t.Errorf("layer lacks %v", want)
	}
	for i := 1; i < len(order); i++ {
		if order[i-1] >= order[i] {
			t.Errorf("layer entries not sorted: %s before %s", order[i-1], order[i])
		}
	}
}

// untar extracts the archive's regular files and directories.
func untar(t *testing.T, archive string) string {
	t.Helper()
	raw, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return dir
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(hdr.Name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			var b []byte
			if b, err = io.ReadAll(tr); err == nil {
				err = os.WriteFile(p, b, 0o644)
			}
		default:
			t.Fatalf("archive entry %s has type %c", hdr.Name, hdr.Typeflag)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestBuildRejectsAndLeavesNothing(t *testing.T) {
	spec, root := fixture(t)
	for _, c := range []struct {
		name   string
		mutate func(*Options)
		want   string
	}{
		{"no registry host", func(o *Options) { o.Name = "plexus:v1" }, `"plexus:v1"`},
		{"docker hub short name", func(o *Options) { o.Name = "plexus/plexus:v1" }, `"plexus/plexus:v1"`},
		{"no tag", func(o *Options) { o.Name = "plexus.local/plexus" }, `"plexus.local/plexus"`},
		{"undeclared argument", func(o *Options) { o.Args = map[string]string{"VERSON": "x"} }, `"VERSON"`},
		{"missing source", func(o *Options) { o.Root = t.TempDir() }, `source "bin/`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			o := options(spec, root, filepath.Join(dir, "plexus.tar"))
			c.mutate(&o)
			_, err := Build(o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Build: %v, want an error naming %s", err, c.want)
			}
			if left, _ := os.ReadDir(dir); len(left) != 0 {
				t.Errorf("a failed build left %v", left)
			}
		})
	}
}
