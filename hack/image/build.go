package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The annotations an importer names the image by: containerd uses the
// full reference in AnnotationImageName; the OCI one carries the tag.
const (
	AnnotationImageName = "io.containerd.image.name"
	AnnotationRefName   = "org.opencontainers.image.ref.name"
)

// Options are the inputs of one build: the same Options and source
// files give the same archive, byte for byte.
type Options struct {
	Spec *Spec
	// Root is the directory the spec's sources are relative to.
	Root string
	// Out is the OCI archive written (a tar of an OCI image layout).
	Out string
	// Name is the image's full reference with its tag,
	// registry.example/repo:tag.
	Name string
	// Args override the spec's argument defaults.
	Args map[string]string
	// Created is every time stamp in the image (layer entries, config,
	// history) and in the archive.
	Created  time.Time
	Platform v1.Platform
}

// Result describes the archive written.
type Result struct {
	Name string
	// Digest is the image manifest's digest (what a runtime reports).
	Digest v1.Hash
	// Size is the archive's size in bytes.
	Size int64
}

// Build writes the image as an OCI archive at o.Out.
func Build(o Options) (Result, error) {
	tag, err := parseName(o.Name)
	if err != nil {
		return Result{}, err
	}
	o.Created = o.Created.UTC()
	img, err := buildImage(o)
	if err != nil {
		return Result{}, err
	}
	platform := o.Platform
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{
		Add: img,
		Descriptor: v1.Descriptor{
			Platform: &platform,
			Annotations: map[string]string{
				AnnotationImageName: o.Name,
				AnnotationRefName:   tag.TagStr(),
			},
		},
	})
	if err := os.MkdirAll(filepath.Dir(o.Out), 0o755); err != nil {
		return Result{}, fmt.Errorf("archive directory: %w", err)
	}
	dir, err := os.MkdirTemp(filepath.Dir(o.Out), ".layout-")
	if err != nil {
		return Result{}, fmt.Errorf("layout directory: %w", err)
	}
	defer os.RemoveAll(dir)
	if _, err := layout.Write(dir, idx); err != nil {
		return Result{}, fmt.Errorf("OCI layout: %w", err)
	}
	size, err := packLayout(dir, o.Out, o.Created)
	if err != nil {
		return Result{}, err
	}
	digest, err := img.Digest()
	if err != nil {
		return Result{}, fmt.Errorf("image digest: %w", err)
	}
	return Result{Name: o.Name, Digest: digest, Size: size}, nil
}

// parseName accepts only a reference with an explicit registry host and
// tag: a runtime would otherwise expand "plexus:v1" to
// docker.io/library/plexus:v1, which is not the name imported.
func parseName(ref string) (name.Tag, error) {
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return name.Tag{}, fmt.Errorf("image name %q: %w", ref, err)
	}
	host, _, hasRepo := strings.Cut(ref, "/")
	isHost := strings.ContainsAny(host, ".:") || host == "localhost"
	if !hasRepo || !isHost {
		return name.Tag{}, fmt.Errorf("image name %q: want registry-host/repository:tag (e.g. plexus.local/plexus:v1)", ref)
	}
	return tag, nil
}

// buildImage assembles the one-layer image with the spec's configuration.
func buildImage(o Options) (v1.Image, error) {
	labels, err := o.Spec.Resolve(o.Args)
	if err != nil {
		return nil, err
	}
	raw, err := layerTar(o.Spec.Files, o.Root, o.Created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(
		func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil },
		tarball.WithMediaType(types.OCILayer),
		tarball.WithCompressionLevel(gzip.DefaultCompression),
		tarball.WithCompressedCaching)
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: o.Created}, CreatedBy: "plexus hack/image"},
	})
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = o.Platform.OS, o.Platform.Architecture, o.Platform.Variant
	cf.Created = v1.Time{Time: o.Created}
	cf.Config = v1.Config{Entrypoint: o.Spec.Entrypoint, Env: o.Spec.Env, Labels: labels}
	return mutate.ConfigFile(img, cf)
}
