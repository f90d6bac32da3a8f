package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/plexus-cni/plexus/pkg/ipam/alloc"
)

// The windows of Pick's spread, in free addresses.
const (
	// firstSpread is the window of a claim's first spreading round in a
	// space not known to be contended; each further lost race quadruples it.
	firstSpread = 256
	// spreadPerLevel is the window per race lost lately in the space
	// (Heat.Bias): the more allocators collided, the wider they spread.
	spreadPerLevel = 16
	// maxSpread bounds the window.
	maxSpread = 1 << 16
)

// Pick chooses the next candidate of r not in used (where the caller has
// added every address it lost a race for) for a claim that lost lost races
// so far, in a space of contention bias (Heat.Bias), by a store client
// whose spread slot is slot (NewSlot).
//
// A claim's first candidate is the lowest free address: a lone allocator,
// and allocations one after another on any nodes, get exactly the lowest
// addresses, as Whereabouts gives them. In a space not known to be
// contended (bias 0), a claim that lost its first race takes the next
// lowest free address: a small burst — a Deployment scaled from 1 to 3,
// its two new pods on two nodes — still gets exactly the lowest addresses
// (scenario S4). A lost race in a contended space, or a second one in a
// quiet space, says that many allocators read the same index and want the
// same addresses; from then on the claim spreads over a window of the lowest
// free addresses: firstSpread of them at its first spreading round, four
// times as many after each further one, at least spreadPerLevel per race
// lost lately in the space (2^bias), at most maxSpread, and never more
// than the range has free. The window's lowest address is left to first
// candidates (allocators whose index is newer go for it). At the first
// spreading round the candidate is the free address of rank
// 1 + slot mod (window-1): clients that read the same index have different
// slots, so their candidates differ, and one client's successive claims
// land next to each other. After further lost races (the slot's address was
// taken too) it is drawn at random from the window. The holes the spread
// leaves low in the pool are filled by later first candidates.
func Pick(r *alloc.Range, used *alloc.Set, lost, bias int, slot uint64, rnd *rand.Rand) (netip.Addr, bool) {
	strict := 0 // lost races that keep to the lowest free address
	if bias == 0 {
		strict = 1
	}
	rounds := lost - strict // spreading rounds
	if rounds <= 0 {
		n, ok := r.Pick(used, 0)
		return n.Addr(), ok
	}
	w := uint64(maxSpread)
	if steps := 2 * (rounds - 1); steps < 16 {
		w = min(w, firstSpread<<steps)
	}
	if bias > 0 {
		w = max(w, spreadPerLevel<<min(bias, 16))
	}
	w = r.Free(used, min(w, maxSpread))
	if w == 0 {
		return netip.Addr{}, false
	}
	skip := uint64(0)
	if w > 1 {
		skip = 1 + slot%(w-1)
		if rounds > 1 {
			skip = 1 + rnd.Uint64N(w-1)
		}
	}
	n, ok := r.Pick(used, int(skip))
	return n.Addr(), ok
}

// NewSlot returns a store client's spread slot for Pick: random, so that
// clients on different nodes, and processes on one node, differ.
func NewSlot() uint64 { return rand.Uint64() }

// NewRand returns a random source for Pick and Backoff seeded from the
// clock and the process.
func NewRand() *rand.Rand {
	return rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), rand.Uint64()))
}

// Backoff waits between retries: exponential from Base to Max with full
// jitter.
type Backoff struct {
	Base, Max time.Duration
}

// DefaultBackoff suits API-server and etcd conflicts.
func DefaultBackoff() Backoff {
	return Backoff{Base: 2 * time.Millisecond, Max: 200 * time.Millisecond}
}

// Wait sleeps before retry number attempt (0-based), or returns ctx's
// error when it ends first.
func (b Backoff) Wait(ctx context.Context, attempt int, rnd *rand.Rand) error {
	d := b.Max
	if attempt < 16 && b.Base<<attempt < b.Max {
		d = b.Base << attempt
	}
	d = time.Duration(rnd.Int64N(int64(d) + 1))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrUnavailable, context.Cause(ctx))
	case <-t.C:
		return nil
	}
}

// SpaceID returns the short stable name of a space used in object names
// and keys.
func SpaceID(space string) string {
	sum := sha256.Sum256([]byte(space))
	return hex.EncodeToString(sum[:8])
}

// HolderID returns the stable name of a holder key.
func HolderID(k Key) string {
	sum := sha256.Sum256([]byte(k.Space + "\x00" + k.ContainerID + "\x00" + k.IfName + "\x00" + strconv.Itoa(k.Slot)))
	return hex.EncodeToString(sum[:20])
}

// AddrID spells an address with DNS-name characters only: dotted IPv4,
// and IPv6 as eight 4-digit hex groups joined by "-".
func AddrID(a netip.Addr) string {
	if a.Is4() {
		return a.String()
	}
	b := a.As16()
	groups := make([]string, 8)
	for i := range groups {
		groups[i] = fmt.Sprintf("%02x%02x", b[2*i], b[2*i+1])
	}
	return strings.Join(groups, "-")
}

// IndexOf builds the index of a list of allocations.
func IndexOf(allocs []Allocation) *alloc.Set {
	var s alloc.Set
	for _, a := range allocs {
		s.Add(alloc.NumOf(a.Address))
	}
	return &s
}

// MaxIndexBytes caps an encoded index. Above it (a pool fragmented into
// hundreds of thousands of runs) the stores stop writing the hint and
// allocation falls back to probing and rebuilding, still correct but
// slower. Both API-server objects (base64: 1 MiB) and etcd values must stay
// well below 1.5 MiB.
const MaxIndexBytes = 768 << 10
