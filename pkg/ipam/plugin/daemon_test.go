package plugin

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"k8s.io/client-go/rest"

	"github.com/plexus-cni/plexus/pkg/ipam/config"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
	"github.com/plexus-cni/plexus/pkg/ipam/store/kubestore"
	"github.com/plexus-cni/plexus/pkg/ipam/store/memstore"
)

// countedStore is a memstore that counts its Close calls.
type countedStore struct {
	*memstore.Store
	id     int
	closed atomic.Int32
}

func (c *countedStore) Close() error {
	c.closed.Add(1)
	return nil
}

// opener opens countedStores sharing one memstore and remembers them.
type opener struct {
	mem    *memstore.Store
	opened []*countedStore
}

func (o *opener) open(*config.Conf, Logf) (store.Store, error) {
	s := &countedStore{Store: o.mem, id: len(o.opened) + 1}
	o.opened = append(o.opened, s)
	return s, nil
}

func writeKubeconfig(t *testing.T, path, token string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("token: "+token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func kubeConf(kubeconfig, ns string) *config.Conf {
	return &config.Conf{Kubeconfig: kubeconfig, Namespace: ns}
}

// underlying returns the countedStore behind a store the cache handed out.
func underlying(t *testing.T, s store.Store) *countedStore {
	t.Helper()
	sh, ok := s.(*sharedStore)
	if !ok {
		t.Fatalf("Acquire returned %T, want the shared wrapper", s)
	}
	return sh.Store.(*countedStore)
}

func acquire(t *testing.T, sc *StoreCache, c *config.Conf) store.Store {
	t.Helper()
	s, err := sc.Acquire(c)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	return s
}

func TestStoreCacheReusesAndCloseIsNoOp(t *testing.T) {
	o := &opener{mem: memstore.New()}
	sc := &StoreCache{Open: o.open}
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	writeKubeconfig(t, kc, "one")
	a := acquire(t, sc, kubeConf(kc, "ipam"))
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_ = a.Close() // twice: still one reference returned
	b := acquire(t, sc, kubeConf(kc, "ipam"))
	defer b.Close()
	if len(o.opened) != 1 || underlying(t, a) != underlying(t, b) {
		t.Fatalf("same configuration opened %d stores, want 1 reused", len(o.opened))
	}
	if n := o.opened[0].closed.Load(); n != 0 {
		t.Errorf("the cached store was closed %d times by requests' Close", n)
	}
	other := acquire(t, sc, kubeConf(kc, "other-ns"))
	defer other.Close()
	if underlying(t, other) == underlying(t, a) || sc.Len() != 2 {
		t.Errorf("another namespace shares the store (%d cached)", sc.Len())
	}
}

// A rewritten kubeconfig (token rotation) gets a new store; the old one is
// closed once the request still using it has finished.
func TestStoreCacheReopensOnChangedKubeconfig(t *testing.T) {
	o := &opener{mem: memstore.New()}
	sc := &StoreCache{Open: o.open}
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	writeKubeconfig(t, kc, "token-1")
	inFlight := acquire(t, sc, kubeConf(kc, "ipam"))
	writeKubeconfig(t, kc, "token-2")
	fresh := acquire(t, sc, kubeConf(kc, "ipam"))
	defer fresh.Close()
	if len(o.opened) != 2 || underlying(t, fresh) == underlying(t, inFlight) {
		t.Fatalf("after the kubeconfig changed: %d stores opened, want a second one", len(o.opened))
	}
	old := o.opened[0]
	if old.closed.Load() != 0 {
		t.Fatal("the replaced store was closed while a request used it")
	}
	inFlight.Close()
	if old.closed.Load() != 1 {
		t.Errorf("the replaced store was closed %d times after its last request, want 1", old.closed.Load())
	}
	if again := acquire(t, sc, kubeConf(kc, "ipam")); underlying(t, again) != underlying(t, fresh) {
		t.Error("the unchanged kubeconfig did not reuse the new store")
	} else {
		again.Close()
	}
	if o.opened[1].closed.Load() != 0 || sc.Len() != 1 {
		t.Errorf("current store closed %d times, %d cached", o.opened[1].closed.Load(), sc.Len())
	}
}

// A kubeconfig that cannot be read is not cached: Open runs every time and
// reports it.
func TestStoreCacheUnreadableFileIsNotCached(t *testing.T) {
	o := &opener{mem: memstore.New()}
	sc := &StoreCache{Open: o.open}
	missing := filepath.Join(t.TempDir(), "absent")
	for range 2 {
		s := acquire(t, sc, kubeConf(missing, "ipam"))
		if _, shared := s.(*sharedStore); shared {
			t.Fatal("a store with an unreadable kubeconfig was cached")
		}
		s.Close()
	}
	if len(o.opened) != 2 || sc.Len() != 0 {
		t.Errorf("opened %d, cached %d; want 2 and 0", len(o.opened), sc.Len())
	}
	if o.opened[0].closed.Load() != 1 {
		t.Error("an uncached store's Close did not close it")
	}
}

func TestStoreCacheEtcdIdentityAndEviction(t *testing.T) {
	o := &opener{mem: memstore.New()}
	sc := &StoreCache{Open: o.open, Max: 2}
	etcd := func(pw string) *config.Conf {
		return &config.Conf{Etcd: &config.Etcd{Endpoints: []string{"127.0.0.1:2379"}, Username: "u", Password: pw}}
	}
	a := acquire(t, sc, etcd("p1"))
	a.Close()
	b := acquire(t, sc, etcd("p2"))
	b.Close()
	if underlying(t, a) == underlying(t, b) {
		t.Fatal("different etcd credentials share a store")
	}
	c := acquire(t, sc, etcd("p3")) // beyond Max: the least recently used idle one goes
	defer c.Close()
	if sc.Len() != 2 || o.opened[0].closed.Load() != 1 || o.opened[1].closed.Load() != 0 {
		t.Errorf("after eviction: %d cached, first closed %d, second closed %d", sc.Len(),
			o.opened[0].closed.Load(), o.opened[1].closed.Load())
	}
}

// Daemon.Do runs the commands with the cached store, returns the result
// with the configuration's cniVersion, and takes the node from the
// request's environment.
func TestDaemonDo(t *testing.T) {
	o := &opener{mem: memstore.New()}
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	writeKubeconfig(t, kc, "t")
	base := newHarness(t).p
	d := &Daemon{Base: base, Stores: &StoreCache{Open: o.open}}
	conf := `{"cniVersion":"0.4.0","name":"n","ipam":{"type":"plexus-ipam","range":"198.51.100.0/29",
		"kubernetes":{"kubeconfig":"` + kc + `","namespace":"ipam"}}}`
	env := map[string]string{"NODE_NAME": "node-from-request"}
	a := &skel.CmdArgs{ContainerID: "c1", IfName: "net1", Netns: "/run/netns/x", Args: "K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p", StdinData: []byte(conf)}
	var first string
	for range 2 {
		res, version, err := d.Do(t.Context(), Request{Command: "ADD", Args: a, Env: env})
		if err != nil {
			t.Fatalf("ADD: %v", err)
		}
		if version != "0.4.0" {
			t.Errorf("result version %q, want the configuration's 0.4.0", version)
		}
		got := addressOf(t, res)
		if first == "" {
			first = got
		} else if got != first {
			t.Errorf("repeated ADD got %s, first %s", got, first)
		}
	}
	if first != "198.51.100.1/29" {
		t.Errorf("ADD got %s, want 198.51.100.1/29", first)
	}
	held, err := o.mem.List(t.Context(), store.Filter{Node: "node-from-request"})
	if err != nil || len(held) != 1 {
		t.Errorf("allocations of the request's node: %v %v", held, err)
	}
	if _, _, err := d.Do(t.Context(), Request{Command: "DEL", Args: a, Env: env}); err != nil {
		t.Fatalf("DEL: %v", err)
	}
	if held, _ := o.mem.List(t.Context(), store.Filter{}); len(held) != 0 {
		t.Errorf("after DEL: %v", held)
	}
	if len(o.opened) != 1 || o.opened[0].closed.Load() != 0 {
		t.Errorf("three requests opened %d stores and closed %d, want 1 and 0", len(o.opened), o.opened[0].closed.Load())
	}
	_, _, err = d.Do(t.Context(), Request{Command: "VERSION", Args: a, Env: env})
	if code(err) != types.ErrInvalidEnvironmentVariables {
		t.Errorf("unknown command: %v, want code %d", err, types.ErrInvalidEnvironmentVariables)
	}
}

func addressOf(t *testing.T, res types.Result) string {
	t.Helper()
	r, err := current.NewResultFromResult(res)
	if err != nil || len(r.IPs) != 1 {
		raw, _ := json.Marshal(res)
		t.Fatalf("result %s: %v", raw, err)
	}
	return r.IPs[0].Address.String()
}

// The daemon's Kubernetes stores take their request rate from the options
// (one client serves the node's IPAM; kubestore's default of 100 requests
// per second held plexusd's /ipam to about 50 allocations per second),
// both for a configuration's kubeconfig and for the daemon's own
// credentials.
func TestDaemonStoresTakeTheRate(t *testing.T) {
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, []byte("apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster:\n    server: http://127.0.0.1:1\n"+
		"contexts:\n- name: c\n  context:\n    cluster: k\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		qps  float32
		want float32
	}{{"set", 400, 400}, {"default", 0, 100}} {
		d := NewDaemon(Default(), nil, DaemonOptions{Credentials: &rest.Config{Host: "http://127.0.0.1:1"}, KubeQPS: tc.qps, KubeBurst: 800})
		for _, c := range []*config.Conf{kubeConf(kc, "ipam"), {Namespace: "own"}} {
			s := acquire(t, d.Stores, c)
			ks, ok := s.(*sharedStore).Store.(*kubestore.Store)
			if !ok {
				t.Fatalf("%s: store %T, want a kubestore", tc.name, s.(*sharedStore).Store)
			}
			if got := ks.QPS(); got != tc.want {
				t.Errorf("%s: store of %+v allows %v requests/s, want %v", tc.name, c, got, tc.want)
			}
			_ = s.Close()
		}
	}
}
