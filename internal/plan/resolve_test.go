package plan

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plexus-cni/plexus/internal/cnierr"
	"github.com/plexus-cni/plexus/pkg/nad"
)

type downResolver struct{}

func (downResolver) NAD(context.Context, string, string) (*nad.Delegate, error) {
	return nil, errors.New("connection refused")
}

func TestResolveRef(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("10-flannel.conflist", `{"cniVersion":"1.0.0","name":"cbr0","plugins":[{"type":"flannel"}]}`)
	single := write("20-single.conf", `{"cniVersion":"0.3.1","name":"single","type":"bridge"}`)
	nads := fakeResolver{"kube-system/from-nad": delegate("from-nad")}
	ctx := context.Background()
	tests := []struct {
		ref      string
		r        Resolver
		wantName string
	}{
		{"from-nad", nads, "from-nad"},   // a NAD in the namespace
		{"cbr0", nads, "cbr0"},           // no NAD: the conf file whose name matches
		{"single", nil, "single"},        // no API at all
		{dir, nads, "cbr0"},              // a directory: its first file
		{single, nads, "single"},         // a file path
		{"cbr0", downResolver{}, "cbr0"}, // API down: the file still resolves
	}
	for _, tc := range tests {
		d, err := ResolveRef(ctx, "clusterNetwork", tc.ref, "kube-system", dir, tc.r)
		if err != nil {
			t.Errorf("ResolveRef(%q): %v", tc.ref, err)
			continue
		}
		if d.Name != tc.wantName {
			t.Errorf("ResolveRef(%q) = %s, want %s", tc.ref, d.Name, tc.wantName)
		}
	}
	_, err := ResolveRef(ctx, "clusterNetwork", "nowhere", "kube-system", dir, nads)
	if cnierr.Code(err) != cnierr.NetworkNotFound || !strings.Contains(err.Error(), `clusterNetwork "nowhere"`) {
		t.Errorf("missing network: %v (code %d)", err, cnierr.Code(err))
	}
	_, err = ResolveRef(ctx, "clusterNetwork", "nowhere", "kube-system", dir, downResolver{})
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("missing network with the API down should report the API error: %v", err)
	}
	_, err = ResolveRef(ctx, "defaultNetworks[0]", filepath.Join(dir, "missing.conf"), "kube-system", dir, nads)
	if cnierr.Code(err) != cnierr.NetworkNotFound || !strings.Contains(err.Error(), "defaultNetworks[0]") {
		t.Errorf("missing path: %v (code %d)", err, cnierr.Code(err))
	}
}
