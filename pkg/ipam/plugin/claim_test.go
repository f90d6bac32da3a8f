package plugin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/pkg/ipam/config"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
	"github.com/plexus-cni/plexus/pkg/ipam/store/memstore"
)

// claimStore is a memstore that holds IPAMClaims too.
type claimStore struct {
	*memstore.Store
	mu     sync.Mutex
	claims map[string]*store.Claim
}

func (c *claimStore) GetClaim(_ context.Context, ns, name string) (*store.Claim, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl, ok := c.claims[ns+"/"+name]
	if !ok {
		return nil, fmt.Errorf("IPAMClaim %s/%s: %w", ns, name, store.ErrNotFound)
	}
	cp := *cl
	return &cp, nil
}

func (c *claimStore) SetClaimIPs(_ context.Context, ns, name string, ips []string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.claims[ns+"/"+name].IPs = ips
	return nil
}

func claimConf(claim string) string {
	return `{"cniVersion":"1.0.0","name":"vmnet","args":{"cni":{"ipam-claim-reference":"` + claim + `"}},"ipam":{"type":"plexus-ipam","range":"10.14.0.0/24"}}`
}

// A VM's claim: the first pod gets an address, written to the claim; it
// survives the pod's DEL as the claim's reservation and the next pod
// naming the claim gets it back; during a migration the new pod takes it
// from the old one, whose late DEL frees nothing; a second claim gets
// another address; bad references fail naming the field.
func TestClaimKeepsTheAddress(t *testing.T) {
	h := newHarness(t)
	cs := &claimStore{Store: h.st, claims: map[string]*store.Claim{
		"tomcat/vm1.vmnet.net1": {Namespace: "tomcat", Name: "vm1.vmnet.net1", Network: "vmnet", Interface: "net1"},
		"tomcat/vm2.vmnet.net1": {Namespace: "tomcat", Name: "vm2.vmnet.net1", Network: "vmnet", Interface: "net1"},
		"tomcat/other-net":      {Namespace: "tomcat", Name: "other-net", Network: "elsewhere", Interface: "net1"},
	}}
	h.p.OpenStore = func(*config.Conf, Logf) (store.Store, error) { return cs, nil }
	conf := claimConf("vm1.vmnet.net1")

	h.addPod("launcher-a", "virt-launcher-vm1-a", "uid-a", conf)
	first := h.held("launcher-a")
	if got := cs.claims["tomcat/vm1.vmnet.net1"].IPs; len(got) != 1 || got[0] != first {
		t.Fatalf("claim status.ips = %v, want [%s]", got, first)
	}
	if err := h.p.Del(args("launcher-a", "net1", conf, "")); err != nil {
		t.Fatal(err)
	}
	rk := store.ClaimReservationKey("net:", "tomcat", "vm1.vmnet.net1", "net1", 0)
	if a, err := h.st.Lookup(t.Context(), rk); err != nil || a.Address.String() != first {
		t.Fatalf("after DEL the claim's reservation is %+v, %v; want %s", a, err, first)
	}
	h.addPod("stranger", "web-0", "uid-s", claimConf("vm2.vmnet.net1"))
	if h.held("stranger") == first {
		t.Fatal("another claim got the first claim's address")
	}
	h.addPod("launcher-b", "virt-launcher-vm1-b", "uid-b", conf)
	if got := h.held("launcher-b"); got != first {
		t.Fatalf("the VM's next pod got %s, want the claim's %s", got, first)
	}
	// Migration: the target pod starts while the source still runs.
	h.addPod("launcher-c", "virt-launcher-vm1-c", "uid-c", conf)
	if got := h.held("launcher-c"); got != first {
		t.Fatalf("the migration target got %s, want the claim's %s", got, first)
	}
	if err := h.p.Del(args("launcher-b", "net1", conf, "")); err != nil || h.held("launcher-c") != first {
		t.Fatalf("the source pod's DEL: %v; the target holds %s, want %s", err, h.held("launcher-c"), first)
	}

	for _, tc := range []struct{ claim, ifname, want string }{
		{"missing", "net1", `args.cni.ipam-claim-reference: invalid value "missing": IPAMClaim tomcat/missing not found`},
		{"other-net", "net1", `IPAMClaim tomcat/other-net is for network "elsewhere" interface "net1", not this attachment's network "vmnet" interface "net1"`},
		{"vm2.vmnet.net1", "net7", `is for network "vmnet" interface "net1", not this attachment's network "vmnet" interface "net7"`},
	} {
		err := h.p.Add(args("bad-"+tc.claim, tc.ifname, claimConf(tc.claim), "K8S_POD_NAMESPACE=tomcat;K8S_POD_NAME=p;K8S_POD_UID=u"))
		var cniErr *types.Error
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &cniErr) || cniErr.Code != types.ErrInvalidNetworkConfig {
			t.Errorf("claim %s on %s: %v; want code 7 and %q", tc.claim, tc.ifname, err, tc.want)
		}
	}
	// The etcd store (no Claims) refuses claims.
	h.p.OpenStore = func(*config.Conf, Logf) (store.Store, error) { return h.st, nil }
	if err := h.p.Add(args("no-api", "net1", conf, "K8S_POD_NAMESPACE=tomcat;K8S_POD_NAME=p;K8S_POD_UID=u")); err == nil ||
		!strings.Contains(err.Error(), "cannot resolve them") {
		t.Errorf("a claim on a store without the API: %v", err)
	}
}
