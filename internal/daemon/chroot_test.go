package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/internal/testbed"
)

// A delegate run through chrootExec sees the root it is given, not
// plexusd's: host-local's dataDir lands inside that root. Its CNI errors
// come back as they are.
func TestChrootExecRunsDelegateInHostRoot(t *testing.T) {
	bin := testbed.RequireCNIPlugins(t, "host-local")
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	plugin, err := os.ReadFile(filepath.Join(bin, "host-local"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "host-local"), plugin, 0o755); err != nil {
		t.Fatal(err)
	}
	leases := "/plexus-chroot-test-" + filepath.Base(root)
	env := []string{"CNI_COMMAND=ADD", "CNI_CONTAINERID=chroot-test", "CNI_NETNS=/proc/self/ns/net", "CNI_IFNAME=net1", "CNI_PATH=/bin"}
	x := &chrootExec{root: root}

	conf := `{"cniVersion":"1.0.0","name":"chrooted","type":"macvlan","ipam":{"type":"host-local","subnet":"198.51.100.0/28","dataDir":"` + leases + `"}}`
	out, err := x.ExecPlugin(context.Background(), "/bin/host-local", []byte(conf), env)
	if err != nil {
		t.Fatalf("ADD through chrootExec: %v", err)
	}
	if !strings.Contains(string(out), "198.51.100.2/28") {
		t.Fatalf("result %s, want 198.51.100.2/28", out)
	}
	if _, err := os.Stat(filepath.Join(root, leases, "chrooted", "198.51.100.2")); err != nil {
		t.Fatalf("the lease is not under the given root: %v", err)
	}
	if _, err := os.Stat(leases); !os.IsNotExist(err) {
		os.RemoveAll(leases)
		t.Fatalf("the lease went to plexusd's own root (%s): %v", leases, err)
	}

	_, err = x.ExecPlugin(context.Background(), "/bin/host-local", []byte(`{"cniVersion":"1.0.0","name":"bad","type":"macvlan","ipam":{"type":"host-local"}}`), env)
	var cniErr *types.Error
	if !errors.As(err, &cniErr) || cniErr.Code == 0 || cniErr.Msg == "" {
		t.Fatalf("a config host-local refuses gave %#v, want its CNI error", err)
	}
	_, err = x.ExecPlugin(context.Background(), "/bin/no-such-plugin", []byte(conf), env)
	if !errors.As(err, &cniErr) || !strings.Contains(cniErr.Msg, "/bin/no-such-plugin") {
		t.Fatalf("a missing plugin gave %v, want an error naming it", err)
	}
}
