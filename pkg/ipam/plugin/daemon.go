package plugin

import (
	"cmp"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/containernetworking/cni/pkg/types"
	"k8s.io/client-go/rest"

	"github.com/plexus-cni/plexus/pkg/ipam/config"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
	"github.com/plexus-cni/plexus/pkg/ipam/store/kubestore"
)

// Daemon runs plexus-ipam's commands inside a long-lived process (plexusd
// serving the requests plexus-ipam forwards to it): the same commands as
// the binary, with the store clients of a StoreCache instead of new ones
// per request.
type Daemon struct {
	// Base is copied for every request, with its OpenStore replaced.
	Base   *Plugin
	Stores *StoreCache

	locks attachmentLocks
}

// DaemonOptions adapt the daemon to the node it serves.
type DaemonOptions struct {
	// ConfFiles are tried before the binary's default flat files (the
	// directory the daemon writes plexus-ipam's defaults into).
	ConfFiles []string
	// Credentials, when set, open the Kubernetes store of a configuration
	// that names no store (neither kubernetes.kubeconfig, also not in a
	// flat file, nor etcd_host): the daemon's own.
	Credentials *rest.Config
	// KubeQPS and KubeBurst bound the request rate of each Kubernetes
	// store client (0: kubestore's defaults, 100 and 200). One client
	// serves every request of the node for its identity, so this is the
	// node's IPAM rate: about 2.2 requests per allocation.
	KubeQPS   float32
	KubeBurst int
}

// NewDaemon returns a Daemon running base's commands, adapted by o, with a
// StoreCache whose stores log their notes to logf.
func NewDaemon(base *Plugin, logf Logf, o DaemonOptions) *Daemon {
	b := *base
	b.Loader.DefaultPaths = append(slices.Clone(o.ConfFiles), base.Loader.DefaultPaths...)
	rate := kubestore.Options{QPS: o.KubeQPS, Burst: o.KubeBurst}
	own := o.Credentials
	sc := &StoreCache{Logf: logf, Open: func(c *config.Conf, logf Logf) (store.Store, error) {
		if c.Etcd != nil || c.Kubeconfig != "" || own == nil {
			return openStore(c, logf, rate)
		}
		opts := rate
		opts.Namespace = cmp.Or(c.Namespace, config.DefaultNamespace)
		s, err := kubestore.New(own, opts)
		if err != nil {
			return nil, withCode(types.ErrInvalidNetworkConfig, err)
		}
		s.Logf = logf
		return s, nil
	}}
	return &Daemon{Base: &b, Stores: sc}
}

// Do runs req as Plugin.Do does, until ctx ends (the daemon's shutdown or
// its bound of a request), with a cached store, one request at a time per
// attachment (see attachmentLocks). It returns the ADD result and the
// cniVersion to print it in.
func (d *Daemon) Do(ctx context.Context, req Request) (types.Result, string, error) {
	unlock, err := d.locks.lock(ctx, req.Args.ContainerID, req.Args.IfName)
	if err != nil {
		return nil, "", withCode(types.ErrTryAgainLater, fmt.Errorf("waiting for the request before it on container %q interface %q: %w",
			req.Args.ContainerID, req.Args.IfName, err))
	}
	defer unlock()
	p := *d.Base
	p.OpenStore = func(c *config.Conf, _ Logf) (store.Store, error) { return d.Stores.Acquire(c) }
	return p.Do(ctx, req)
}

// DefaultMaxStores bounds the stores a StoreCache keeps open.
const DefaultMaxStores = 32

// StoreCache keeps one open store per store identity: the kubeconfig path
// and namespace (Kubernetes store), or the etcd endpoints, user, password
// and TLS file paths. An entry is reopened when the content of one of its
// files changes (a kubeconfig rewritten with a rotated token, renewed etcd
// certificates). The stores it hands out close nothing: they return their
// reference, and a replaced store is closed when its last request ends.
type StoreCache struct {
	// Open opens a store (default OpenStore).
	Open func(c *config.Conf, logf Logf) (store.Store, error)
	// ReadFile reads the files a store depends on (default os.ReadFile).
	ReadFile func(name string) ([]byte, error)
	// Logf receives the stores' own notes (nil: dropped).
	Logf Logf
	// Max bounds the open stores (default DefaultMaxStores); beyond it the
	// least recently used idle one is closed.
	Max int

	mu      sync.Mutex // guards the fields below
	entries map[[32]byte]*cacheEntry
	clock   uint64
}

type cacheEntry struct {
	st      store.Store
	version [32]byte
	refs    int
	stale   bool
	used    uint64
}

// Acquire returns the store c selects, opening it if needed; its Close
// returns the reference (and never closes a store still cached). A store
// whose files cannot be read is opened for this request only, so that
// Open reports what is wrong with them.
func (sc *StoreCache) Acquire(c *config.Conf) (store.Store, error) {
	key, files := storeIdentity(c)
	version, err := sc.version(files)
	if err != nil {
		return sc.open(c)
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.clock++
	e := sc.entries[key]
	if e == nil || e.version != version {
		st, err := sc.open(c)
		if err != nil {
			return nil, err
		}
		if e != nil {
			sc.retire(key, e)
		}
		e = &cacheEntry{st: st, version: version}
		if sc.entries == nil {
			sc.entries = map[[32]byte]*cacheEntry{}
		}
		sc.entries[key] = e
	}
	e.refs++
	e.used = sc.clock
	sc.evict()
	return &sharedStore{Store: e.st, release: func() { sc.release(e) }}, nil
}

// Len returns how many stores are open in the cache.
func (sc *StoreCache) Len() int {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return len(sc.entries)
}

func (sc *StoreCache) open(c *config.Conf) (store.Store, error) {
	open := sc.Open
	if open == nil {
		open = OpenStore
	}
	logf := sc.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return open(c, logf)
}

// version hashes the content of files (in order).
func (sc *StoreCache) version(files []string) ([32]byte, error) {
	read := sc.ReadFile
	if read == nil {
		read = os.ReadFile
	}
	h := sha256.New()
	for _, f := range files {
		raw, err := read(f)
		if err != nil {
			return [32]byte{}, fmt.Errorf("store file %s: %w", f, err)
		}
		fmt.Fprintf(h, "%d:", len(raw))
		h.Write(raw)
	}
	var v [32]byte
	copy(v[:], h.Sum(nil))
	return v, nil
}

// retire removes e from the cache; it is closed now when idle, else by its
// last release. Called with sc.mu held.
func (sc *StoreCache) retire(key [32]byte, e *cacheEntry) {
	delete(sc.entries, key)
	e.stale = true
	if e.refs == 0 {
		_ = e.st.Close()
	}
}

// evict retires least recently used idle entries beyond Max. Called with
// sc.mu held.
func (sc *StoreCache) evict() {
	limit := sc.Max
	if limit <= 0 {
		limit = DefaultMaxStores
	}
	for len(sc.entries) > limit {
		var oldest *cacheEntry
		var oldestKey [32]byte
		for k, e := range sc.entries {
			if e.refs == 0 && (oldest == nil || e.used < oldest.used) {
				oldest, oldestKey = e, k
			}
		}
		if oldest == nil {
			return
		}
		sc.retire(oldestKey, oldest)
	}
}

func (sc *StoreCache) release(e *cacheEntry) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	e.refs--
	if e.refs == 0 && e.stale {
		_ = e.st.Close()
	}
}

// storeIdentity returns the cache key of c's store (a hash: the etcd
// password is part of the identity and is not kept in clear) and the
// files whose content versions it.
func storeIdentity(c *config.Conf) ([32]byte, []string) {
	var id []string
	var files []string
	if e := c.Etcd; e != nil {
		id = append(id, "etcd", strings.Join(e.Endpoints, ","), e.Username, e.Password, e.CertFile, e.KeyFile, e.CACertFile)
		for _, f := range []string{e.CertFile, e.KeyFile, e.CACertFile} {
			if f != "" {
				files = append(files, f)
			}
		}
	} else {
		id = append(id, "kubernetes", c.Kubeconfig, c.Namespace)
		if c.Kubeconfig != "" {
			files = append(files, c.Kubeconfig)
		}
	}
	return sha256.Sum256([]byte(strings.Join(id, "\x00"))), files
}

// sharedStore is a cached store as one request sees it: Close returns the
// request's reference instead of closing the connection.
type sharedStore struct {
	store.Store
	once    sync.Once
	release func()
}

// Unwrap returns the cached store (store.ClaimsOf).
func (s *sharedStore) Unwrap() store.Store { return s.Store }

// Close implements store.Store.
func (s *sharedStore) Close() error {
	s.once.Do(s.release)
	return nil
}
