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

// maxSpread bounds how far past the lowest free address an allocator that
// lost a race may pick.
const maxSpread = 256

// StrictConflicts is how many lost races an allocation takes with the lowest
// free address as its next candidate before it starts to spread.
const StrictConflicts = 4

// Pick chooses the next candidate of r not in used (where the caller has
// added every address it lost a race for). For the first StrictConflicts
// lost races it is the lowest free address, so sequential allocations and
// small concurrent bursts (a Deployment scaled up by a few pods, on any
// nodes) get exactly the lowest addresses, as Whereabouts gives them. After
// that the n-th further loss draws one of the next 16*2^(n-1) free ones at
// random (at most maxSpread): a large burst of allocators that all read the
// same index stops colliding within a few rounds, and the holes it leaves
// low in the pool are filled by later allocations. A claim in a space known
// to be contended passes its Heat's Bias in conflicts, and starts spread.
func Pick(r *alloc.Range, used *alloc.Set, conflicts int, rnd *rand.Rand) (netip.Addr, bool) {
	skip := 0
	if n := conflicts - StrictConflicts; n > 0 {
		spread := maxSpread
		if n < 5 {
			spread = 16 << (n - 1)
		}
		skip = rnd.IntN(spread)
	}
	n, ok := r.Pick(used, skip)
	return n.Addr(), ok
}

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
