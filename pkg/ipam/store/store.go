// Package store defines what plexus-ipam records about allocations and the
// Store interface that its back ends (the Kubernetes API in kubestore, etcd
// in etcdstore, memory in memstore) implement with the same semantics,
// which the shared suite in storetest checks.
//
// The model: allocations live in address spaces (see config.Conf.Space).
// Within a space an address has at most one allocation; the truth is one
// record per allocated address, created only if absent. A second record per
// holder key (space, containerID, ifname, slot) points at the address, so
// ADD and DEL find it without listing. A per-space index (an alloc.Set of
// allocated addresses) is the hint that finds the lowest free address.
package store

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/plexus-cni/plexus/pkg/ipam/alloc"
)

// Sentinel errors callers branch on.
var (
	// ErrNotFound: no allocation for the key or address.
	ErrNotFound = errors.New("allocation not found")
	// ErrExhausted: the range has no free address.
	ErrExhausted = errors.New("no free address in range")
	// ErrInUse: a requested address is held by another attachment.
	ErrInUse = errors.New("address held by another attachment")
	// ErrUnavailable: the store cannot be reached, or stayed too busy
	// (conflicts) to finish in time; the request may be retried.
	ErrUnavailable = errors.New("store unavailable")
)

// Key identifies one address of one attachment.
type Key struct {
	Space       string
	ContainerID string
	IfName      string
	// Slot is the index of the address in the configuration (range,
	// ipRanges entries, host-local range sets, in that order).
	Slot int
}

// Holder describes who holds an allocation.
type Holder struct {
	ContainerID string
	IfName      string
	// Network is the CNI network name (the configuration's "name").
	Network      string
	PodNamespace string
	PodName      string
	PodUID       string
	Node         string
	Created      time.Time
	// Sticky says the address outlives the pod: the holder's network has
	// "sticky": true, so DEL (and the controller, for a pod that is gone)
	// turns the allocation into a reservation for the pod's namespace and
	// name instead of freeing it (see Reservation).
	Sticky bool
	// Claim names the IPAMClaim (in PodNamespace) the address belongs to:
	// it outlives every pod that holds it, as a reservation of the claim,
	// until the claim is deleted (Sticky is set too).
	Claim string
}

// Allocation is one allocated address and its holder.
type Allocation struct {
	Space   string
	Slot    int
	Address netip.Addr
	Holder
}

// Key returns the holder key of a.
func (a Allocation) Key() Key {
	return Key{Space: a.Space, ContainerID: a.ContainerID, IfName: a.IfName, Slot: a.Slot}
}

// Owns reports whether a is held by key k.
func (a Allocation) Owns(k Key) bool { return a.Key() == k }

// Request asks for one address.
type Request struct {
	Space string
	Slot  int
	Range *alloc.Range
	// Want is a requested address (zero: the lowest free one).
	Want   netip.Addr
	Holder Holder
}

// Key returns the holder key of r.
func (r Request) Key() Key {
	return Key{Space: r.Space, ContainerID: r.Holder.ContainerID, IfName: r.Holder.IfName, Slot: r.Slot}
}

// Filter selects allocations; empty fields match anything.
type Filter struct {
	Space       string
	Network     string
	Node        string
	ContainerID string
}

// Match reports whether a passes f.
func (f Filter) Match(a Allocation) bool {
	return (f.Space == "" || f.Space == a.Space) && (f.Network == "" || f.Network == a.Network) &&
		(f.Node == "" || f.Node == a.Node) && (f.ContainerID == "" || f.ContainerID == a.ContainerID)
}

// SpaceInfo summarises one address space's index.
type SpaceInfo struct {
	Space string
	// Allocated counts the addresses the index marks allocated.
	Allocated uint64
	// Runs is the number of runs in the index, IndexBytes its encoded size.
	Runs       int
	IndexBytes int
}

// Store keeps allocations. Every method is safe for concurrent use, also
// by many processes on many nodes: no two holders ever get one address of
// a space. A call whose context has ended fails with an error wrapping
// ErrUnavailable.
type Store interface {
	// Allocate returns the address held by the request's key, or claims
	// one: the requested address, or the lowest free one of the range.
	Allocate(ctx context.Context, req Request) (Allocation, error)
	// Lookup returns the allocation held by k (ErrNotFound if none).
	Lookup(ctx context.Context, k Key) (Allocation, error)
	// Release frees what k holds; an unknown key is not an error.
	Release(ctx context.Context, k Key) error
	// List returns the allocations f matches, with their holders.
	List(ctx context.Context, f Filter) ([]Allocation, error)
	// Free frees addr in space whoever holds it (for reconcilers); an
	// address that is not allocated is not an error.
	Free(ctx context.Context, space string, addr netip.Addr) error
	// FreeHeld frees a.Address only while a's holder key still holds it
	// (reconcilers and GC act on what they listed: the address may have
	// been freed and handed to another holder since). It works without
	// the holder record too; an address held by another key, or not at
	// all, is left alone and is not an error.
	FreeHeld(ctx context.Context, a Allocation) error
	// Spaces lists the address spaces that have an index.
	Spaces(ctx context.Context) ([]SpaceInfo, error)
	// RebuildIndex recomputes a space's index from its allocations.
	RebuildIndex(ctx context.Context, space string) error
	// Transfer hands the allocation k holds to holder to (same space and
	// slot; to's ContainerID and IfName form the new key) without the
	// address ever being free in between: a sticky address becomes a
	// reservation on DEL and is taken over by the pod's next ADD. It
	// returns ErrNotFound when k holds nothing and ErrInUse when the new
	// key already holds an address.
	Transfer(ctx context.Context, k Key, to Holder) (Allocation, error)
	// Import records allocations in bulk (create-if-absent; an address
	// already allocated is an error); for migrations and tests.
	Import(ctx context.Context, allocs []Allocation) error
	// Ping checks that the store answers.
	Ping(ctx context.Context) error
	// Close releases connections.
	Close() error
}

// Stats counts what a store client did, for benchmarks and tests.
type Stats struct {
	// Requests is the number of API-server requests or etcd round trips.
	Requests int64
	// ClaimConflicts counts candidates found taken (lost races or a stale
	// index); IndexConflicts counts index writes retried after a
	// concurrent update.
	ClaimConflicts int64
	IndexConflicts int64
}

// HolderRecord is the record of one holder key: the address it points
// at (which the key may or may not hold).
type HolderRecord struct {
	Key
	Address netip.Addr
}

// HolderLister is implemented by the stores: it lists a space's holder
// records, for consistency checks (`plexusctl ipam show`).
type HolderLister interface {
	Holders(ctx context.Context, space string) ([]HolderRecord, error)
}
