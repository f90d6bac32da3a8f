package wbimport

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/plexus-cni/plexus/pkg/ipam/config"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

// Results of one holder.
const (
	Imported    = "imported"
	WouldImport = "would import"
	Already     = "already imported"
	Skipped     = "skipped"
	Problem     = "problem"
)

// Row is what happened to one Whereabouts holder (in one space).
type Row struct {
	// Source is the Whereabouts object: "ippool/<name>" or
	// "reservation/<name>".
	Source      string `json:"source"`
	Address     string `json:"address"`
	Pod         string `json:"pod,omitempty"`
	ContainerID string `json:"containerID,omitempty"`
	Interface   string `json:"interface,omitempty"`
	// Store and Space are where the address went in plexus-ipam (Space
	// as config.SpaceName spells it).
	Store  string `json:"store,omitempty"`
	Space  string `json:"space,omitempty"`
	Result string `json:"result"`
	Detail string `json:"detail,omitempty"`
}

// Report is the outcome of an import.
type Report struct {
	DryRun bool  `json:"dryRun"`
	Rows   []Row `json:"rows"`
}

// Count returns how many rows have result.
func (r *Report) Count(result string) int {
	n := 0
	for _, row := range r.Rows {
		if row.Result == result {
			n++
		}
	}
	return n
}

// Stores opens the store a network's configuration selects.
type Stores interface {
	// For returns its name ("kubernetes/<namespace>", "etcd/<endpoints>")
	// and the store; the caller closes nothing (the Stores owns them).
	For(n *Network) (string, store.Store, error)
}

// Options tune Run.
type Options struct {
	// DryRun reads and compares but writes nothing.
	DryRun bool
	// Now stamps the imported allocations (default time.Now).
	Now func() time.Time
}

// item is one address to claim for one holder in one space.
type item struct {
	row   Row
	net   *Network
	alloc store.Allocation
}

// Run imports what in describes into stores.
func Run(ctx context.Context, in Inputs, stores Stores, o Options) (*Report, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	p := &planner{in: in, now: o.Now(), uses: poolUses(in.Networks), covered: map[string]string{}}
	for _, nad := range slices.Sorted(maps.Keys(in.Unusable)) {
		p.rows = append(p.rows, Row{Source: "nad/" + nad, Result: Problem,
			Detail: fmt.Sprintf("plexus-ipam rejects its configuration (fix it before switching its type): %v", in.Unusable[nad])})
	}
	if err := p.pools(); err != nil {
		return nil, err
	}
	if err := p.reservations(); err != nil {
		return nil, err
	}
	a := &applier{stores: stores, dry: o.DryRun, held: map[string]map[netip.Addr]store.Allocation{}}
	rep := &Report{DryRun: o.DryRun, Rows: p.rows}
	for _, it := range p.items {
		rep.Rows = append(rep.Rows, a.apply(ctx, it))
	}
	return rep, nil
}

// applier claims planned addresses, each space's allocations listed once.
type applier struct {
	stores Stores
	dry    bool
	held   map[string]map[netip.Addr]store.Allocation // store + space -> address -> holder
}

func (a *applier) apply(ctx context.Context, it item) Row {
	row := it.row
	row.Space = config.SpaceName(it.alloc.Space)
	name, st, err := a.stores.For(it.net)
	row.Store = name
	if err != nil {
		return result(row, Problem, "opening the store of %s: %v", it.net.NAD, err)
	}
	held, err := a.list(ctx, name, st, it.alloc.Space)
	if err != nil {
		return result(row, Problem, "listing %s: %v", name, err)
	}
	key, addr := it.alloc.Key(), it.alloc.Address
	if cur, ok := held[addr]; ok {
		return settled(row, cur, it.alloc)
	}
	if prev, err := st.Lookup(ctx, key); err == nil {
		return result(row, Problem, "container %s, %s already holds %s in plexus-ipam", key.ContainerID, key.IfName, prev.Address)
	} else if !errors.Is(err, store.ErrNotFound) {
		return result(row, Problem, "%v", err)
	}
	if a.dry {
		held[addr] = it.alloc
		return result(row, WouldImport, "")
	}
	got, err := st.Allocate(ctx, store.Request{Space: key.Space, Slot: key.Slot, Want: addr, Holder: it.alloc.Holder})
	if err != nil {
		if errors.Is(err, store.ErrInUse) {
			_ = st.Release(ctx, key) // the holder record it may have left; it holds nothing
			return result(row, Problem, "taken in plexus-ipam meanwhile: %v", err)
		}
		return result(row, Problem, "%v", err)
	}
	held[addr] = got
	return result(row, Imported, "")
}

// settled describes an address plexus-ipam already has a holder for.
func settled(row Row, cur, want store.Allocation) Row {
	switch {
	case cur.Owns(want.Key()):
		return result(row, Already, "")
	case cur.PodUID != "" && cur.PodUID == want.PodUID:
		return result(row, Already, "held by the same pod (container %s, %s)", cur.ContainerID, cur.IfName)
	}
	who := cur.ContainerID
	if cur.PodName != "" {
		who = fmt.Sprintf("pod %s/%s (container %s)", cur.PodNamespace, cur.PodName, cur.ContainerID)
	}
	return result(row, Problem, "plexus-ipam already gave this address to %s, %s: two pods hold it", who, cur.IfName)
}

// list returns the holders of a space, read once per run.
func (a *applier) list(ctx context.Context, name string, st store.Store, space string) (map[netip.Addr]store.Allocation, error) {
	k := name + "\x00" + space
	if m, ok := a.held[k]; ok {
		return m, nil
	}
	allocs, err := st.List(ctx, store.Filter{Space: space})
	if err != nil {
		return nil, err
	}
	m := map[netip.Addr]store.Allocation{}
	for _, al := range allocs {
		m[al.Address] = al
	}
	a.held[k] = m
	return m, nil
}

func result(row Row, res, format string, args ...any) Row {
	row.Result = res
	if format != "" {
		row.Detail = fmt.Sprintf(format, args...)
	}
	return row
}
