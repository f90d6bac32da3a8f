// Package etcdstore keeps plexus-ipam allocations in etcd v3 (selected by
// etcd_host). Per address space it keeps one key per allocated address
// (the truth), one key per holder key, and one index key; every change of
// an allocation writes all three in one transaction guarded by their
// revisions, so the index is always exact and no address ever has two
// holders. There is no lock and no lease.
package etcdstore

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

// DefaultPrefix is where the keys live.
const DefaultPrefix = "/plexus/ipam/"

// Store is a store.Store on etcd.
type Store struct {
	cli     *clientv3.Client
	prefix  string
	backoff store.Backoff

	requests, claimConflicts, indexConflicts atomic.Int64
	heat                                     store.Heat
	// slot is this client's place in the spread of claims that lost a
	// race (store.Pick).
	slot uint64
}

var _ store.Store = (*Store)(nil)

// Options are the etcd_* configuration keys.
type Options struct {
	Endpoints  []string
	Username   string
	Password   string
	CertFile   string
	KeyFile    string
	CACertFile string
	// Prefix of every key (default DefaultPrefix).
	Prefix string
	// DialTimeout bounds connecting (default 5s).
	DialTimeout time.Duration
	// DialOptions are extra gRPC dial options (tests inject failures with
	// an interceptor).
	DialOptions []grpc.DialOption
}

// New connects to etcd. It does not wait for the cluster: calls fail
// when their context ends.
func New(o Options) (*Store, error) {
	if len(o.Endpoints) == 0 {
		return nil, errors.New("etcd_host: no endpoints")
	}
	cfg := clientv3.Config{Endpoints: o.Endpoints, Username: o.Username, Password: o.Password,
		DialTimeout: o.DialTimeout, DialOptions: o.DialOptions, Logger: zap.NewNop()}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if o.CertFile != "" || o.KeyFile != "" || o.CACertFile != "" {
		tc, err := tlsConfig(o)
		if err != nil {
			return nil, err
		}
		cfg.TLS = tc
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcd client for %s: %w", strings.Join(o.Endpoints, ","), err)
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	return &Store{cli: cli, prefix: o.Prefix, backoff: store.Backoff{Base: 500 * time.Microsecond, Max: 5 * time.Millisecond}, slot: store.NewSlot()}, nil
}

func tlsConfig(o Options) (*tls.Config, error) {
	info := transport.TLSInfo{CertFile: o.CertFile, KeyFile: o.KeyFile, TrustedCAFile: o.CACertFile}
	tc, err := info.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("etcd TLS (etcd_cert_file %q, etcd_key_file %q, etcd_ca_cert_file %q): %w", o.CertFile, o.KeyFile, o.CACertFile, err)
	}
	return tc, nil
}

// Close implements store.Store.
func (s *Store) Close() error { return s.cli.Close() }

// Stats returns what this client did so far.
func (s *Store) Stats() store.Stats {
	return store.Stats{Requests: s.requests.Load(), ClaimConflicts: s.claimConflicts.Load(), IndexConflicts: s.indexConflicts.Load()}
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error {
	s.requests.Add(1)
	_, err := s.cli.Get(ctx, s.prefix+"ping", clientv3.WithCountOnly())
	return classify(err, "reading from etcd")
}

// classify wraps every etcd failure but authentication and permission
// errors with store.ErrUnavailable.
func classify(err error, what string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if strings.Contains(msg, "authentication failed") || strings.Contains(msg, "permission denied") || strings.Contains(msg, "user name is empty") {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: %w: %w", what, store.ErrUnavailable, err)
}

// Keys.

func (s *Store) allocKey(space string, a netip.Addr) string {
	return s.prefix + "alloc/" + store.SpaceID(space) + "/" + store.AddrID(a)
}

func (s *Store) allocPrefix(space string) string {
	if space == "" {
		return s.prefix + "alloc/"
	}
	return s.prefix + "alloc/" + store.SpaceID(space) + "/"
}

func (s *Store) holderKey(k store.Key) string {
	return s.prefix + "holder/" + store.SpaceID(k.Space) + "/" + store.HolderID(k)
}

func (s *Store) indexKey(space string) string { return s.prefix + "index/" + store.SpaceID(space) }

// Records.

// allocRecord is the value of an allocation key.
type allocRecord struct {
	Space        string    `json:"space"`
	Address      string    `json:"address"`
	Slot         int       `json:"slot"`
	ContainerID  string    `json:"containerID"`
	IfName       string    `json:"ifName"`
	Network      string    `json:"network,omitempty"`
	PodNamespace string    `json:"podNamespace,omitempty"`
	PodName      string    `json:"podName,omitempty"`
	PodUID       string    `json:"podUID,omitempty"`
	Node         string    `json:"node,omitempty"`
	Created      time.Time `json:"created"`
	Sticky       bool      `json:"sticky,omitempty"`
	Claim        string    `json:"claim,omitempty"`
}

func encodeAlloc(a store.Allocation) string {
	b, _ := json.Marshal(allocRecord{Space: a.Space, Address: a.Address.String(), Slot: a.Slot, ContainerID: a.ContainerID,
		IfName: a.IfName, Network: a.Network, PodNamespace: a.PodNamespace, PodName: a.PodName, PodUID: a.PodUID,
		Node: a.Node, Created: a.Created, Sticky: a.Sticky, Claim: a.Claim})
	return string(b)
}

func decodeAlloc(b []byte) (store.Allocation, error) {
	var r allocRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return store.Allocation{}, fmt.Errorf("allocation record: %w", err)
	}
	addr, err := netip.ParseAddr(r.Address)
	if err != nil {
		return store.Allocation{}, fmt.Errorf("allocation record: address %q: %w", r.Address, err)
	}
	return store.Allocation{Space: r.Space, Slot: r.Slot, Address: addr, Holder: store.Holder{
		ContainerID: r.ContainerID, IfName: r.IfName, Network: r.Network, PodNamespace: r.PodNamespace,
		PodName: r.PodName, PodUID: r.PodUID, Node: r.Node, Created: r.Created, Sticky: r.Sticky, Claim: r.Claim,
	}}, nil
}

// holderRecord is the value of a holder key.
type holderRecord struct {
	Space       string `json:"space"`
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifName"`
	Slot        int    `json:"slot"`
	Address     string `json:"address"`
}

func encodeHolder(k store.Key, a netip.Addr) string {
	b, _ := json.Marshal(holderRecord{Space: k.Space, ContainerID: k.ContainerID, IfName: k.IfName, Slot: k.Slot, Address: a.String()})
	return string(b)
}

// indexRecord is the value of an index key.
type indexRecord struct {
	Space string `json:"space"`
	Index []byte `json:"index"`
}
