package plan

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/plexus-cni/plexus/internal/cnierr"
	"github.com/plexus-cni/plexus/pkg/nad"
)

// ErrNotFound is wrapped by Resolver implementations when a NAD does not exist.
var ErrNotFound = errors.New("not found")

// ResolveRef resolves a clusterNetwork, defaultNetworks or delegates entry
// the way Multus does: a value containing "/" is a file or directory path;
// any other value is a NAD in namespace, else the CNI configuration in
// confDir whose network name matches. r may be nil outside Kubernetes.
func ResolveRef(ctx context.Context, field, ref, namespace, confDir string, r Resolver) (*nad.Delegate, error) {
	if strings.Contains(ref, "/") {
		return resolvePath(field, ref)
	}
	var apiErr error
	if r != nil {
		d, err := r.NAD(ctx, namespace, ref)
		if err == nil {
			return d, nil
		}
		if !errors.Is(err, ErrNotFound) {
			apiErr = err
		}
	}
	d, err := nad.FindInDir(confDir, ref)
	if err == nil {
		return d, nil
	}
	if errors.Is(err, nad.ErrNotFound) {
		if apiErr != nil {
			return nil, fmt.Errorf("%s %q: %w", field, ref, apiErr)
		}
		return nil, cnierr.New(cnierr.InvalidNetConfig,
			"%s %q: no NetworkAttachmentDefinition %s/%s and no CNI configuration named %q in %s",
			field, ref, namespace, ref, ref, confDir)
	}
	return nil, cnierr.Wrap(cnierr.InvalidNetConfig, fmt.Errorf("%s %q: %w", field, ref, err))
}

func resolvePath(field, path string) (*nad.Delegate, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, cnierr.New(cnierr.InvalidNetConfig, "%s %q: %v", field, path, err)
	}
	var d *nad.Delegate
	if fi.IsDir() {
		d, err = nad.FirstInDir(path)
	} else {
		d, err = nad.ParseFile(path)
	}
	if err != nil {
		return nil, cnierr.Wrap(cnierr.InvalidNetConfig, fmt.Errorf("%s %q: %w", field, path, err))
	}
	return d, nil
}
