package daemon

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/invoke"

	"github.com/plexus-cni/plexus/internal/daemon/options"
	"github.com/plexus-cni/plexus/internal/daemon/wire"
)

// capture is an invoke.Exec that keeps the environment of the last run.
type capture struct {
	invoke.Exec
	environ []string
}

func (c *capture) ExecPlugin(_ context.Context, _ string, _ []byte, environ []string) ([]byte, error) {
	c.environ = environ
	return nil, nil
}

// The delegates plexusd runs get the node and the socket in their own
// environment; plexusd's environment is left as it is.
func TestDelegatesGetNodeAndSocket(t *testing.T) {
	libcniEnv := []string{"PATH=/usr/bin", wire.SocketEnv + "=/stale.sock", "CNI_COMMAND=ADD", "CNI_IFNAME=net1"}
	tests := []struct {
		name      string
		serveIPAM bool
		daemonEnv map[string]string
		want      []string
	}{
		{"serving IPAM", true, nil,
			[]string{"PATH=/usr/bin", "CNI_COMMAND=ADD", "CNI_IFNAME=net1", "NODE_NAME=node-1", wire.SocketEnv + "=/run/plexus/plexusd.sock"}},
		{"not serving IPAM", false, nil,
			[]string{"PATH=/usr/bin", "CNI_COMMAND=ADD", "CNI_IFNAME=net1", "NODE_NAME=node-1"}},
		{"node named by plexusd's NODENAME", true, map[string]string{"NODENAME": "from-env"},
			[]string{"PATH=/usr/bin", "CNI_COMMAND=ADD", "CNI_IFNAME=net1", wire.SocketEnv + "=/run/plexus/plexusd.sock"}},
	}
	before := os.Environ()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := &options.Options{NodeName: "node-1", SocketPath: "/run/plexus/plexusd.sock", ServeIPAM: tt.serveIPAM}
			e := newDelegateExec(o, func(k string) string { return tt.daemonEnv[k] })
			inner := &capture{}
			e.Exec = inner
			if _, err := e.ExecPlugin(t.Context(), "/opt/cni/bin/macvlan", nil, libcniEnv); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(inner.environ, tt.want) {
				t.Errorf("delegate environment:\n got %s\nwant %s", strings.Join(inner.environ, " "), strings.Join(tt.want, " "))
			}
		})
	}
	if after := os.Environ(); !slices.Equal(before, after) {
		t.Error("plexusd's own environment changed")
	}
}
