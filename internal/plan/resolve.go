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

// ResolveRef resolves a clusterNetwork, defaultNetworks or delegates entry
// the way Multus does: a value containing "/" is a file or directory path;
// any other value is a NAD in namespace, else the CNI configuration in
// confDir whose network name matches. r may be nil outside Kubernetes.
// A reference that names nothing wraps nad.ErrNotFound; when the API could
// not be asked, the API's error is returned instead (the NAD may exist).
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
		if !errors.Is(err, nad.ErrNotFound) {
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
		return nil, fmt.Errorf("%s %q: NetworkAttachmentDefinition %s/%s, or CNI configuration %q in %s: %w",
			field, ref, namespace, ref, ref, confDir, nad.ErrNotFound)
	}
	return nil, cnierr.Wrap(cnierr.InvalidNetConfig, fmt.Errorf("%s %q: %w", field, ref, err))
}

func resolvePath(field, path string) (*nad.Delegate, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s %q: %w", field, path, nad.ErrNotFound)
	}
	if err != nil {
		return nil, cnierr.New(cnierr.InvalidNetConfig, "%s %q: %v", field, path, err)
	}
	var d *nad.Delegate
	if fi.IsDir() {
		d, err = nad.FirstInDir(path)
	} else {
		d, err = nad.ParseFile(path)
	}
	if errors.Is(err, nad.ErrNotFound) {
		return nil, fmt.Errorf("%s %q: %w", field, path, err)
	}
	if err != nil {
		return nil, cnierr.Wrap(cnierr.InvalidNetConfig, fmt.Errorf("%s %q: %w", field, path, err))
	}
	return d, nil
}
