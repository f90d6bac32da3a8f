// Command image builds a container image from a spec file (files and
// configuration) as an OCI archive that `ctr images import` loads, with
// go-containerregistry: offline, no registry, no daemon. The same spec,
// source files and flags give the same archive, byte for byte.
//
// `make image` builds plexus's image from plexus.json and the binaries in
// bin/; the repository's Dockerfile builds the same image with docker or
// buildah (this module's tests keep the two equal).
//
// It lives in its own module so that go-containerregistry stays out of
// the plexus module and of its binaries' dependency closure.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

// argFlags collects repeated -arg NAME=VALUE flags.
type argFlags map[string]string

func (a argFlags) String() string { return fmt.Sprint(map[string]string(a)) }

func (a argFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("-arg %q: want NAME=VALUE", s)
	}
	a[k] = v
	return nil
}

func run(argv []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	specFile := fs.String("spec", "", "image spec (JSON)")
	root := fs.String("root", ".", "directory the spec's sources are relative to")
	out := fs.String("out", "", "OCI archive to write")
	ref := fs.String("name", "", "full image reference with tag, registry-host/repository:tag")
	platform := fs.String("platform", "linux/"+runtime.GOARCH, "os/arch[/variant] of the files")
	created := fs.String("created", getenv("SOURCE_DATE_EPOCH"), "time stamp of everything, Unix seconds (default $SOURCE_DATE_EPOCH, else 0)")
	args := argFlags{}
	fs.Var(args, "arg", "NAME=VALUE overriding a spec argument (repeatable)")
	if err := fs.Parse(argv); err != nil {
		return err
	}
	if *specFile == "" || *out == "" || *ref == "" {
		return fmt.Errorf("-spec, -out and -name are required")
	}
	spec, err := LoadSpec(*specFile)
	if err != nil {
		return err
	}
	p, err := v1.ParsePlatform(*platform)
	if err != nil {
		return fmt.Errorf("-platform %q: %w", *platform, err)
	}
	epoch := int64(0)
	if *created != "" {
		if epoch, err = strconv.ParseInt(*created, 10, 64); err != nil {
			return fmt.Errorf("-created %q: want Unix seconds", *created)
		}
	}
	res, err := Build(Options{Spec: spec, Root: *root, Out: *out, Name: *ref, Args: args,
		Created: time.Unix(epoch, 0), Platform: *p})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n  digest %s\n  archive %s (%.1f MiB)\n", res.Name, res.Digest, *out, float64(res.Size)/(1<<20))
	return nil
}
