package alloc

import (
	"fmt"
	"net/netip"
)

// Range is one place an address may come from: a subnet, the inclusive
// bounds allocation stays within, and the addresses never handed out (the
// network address, the IPv4 broadcast address, the gateway and the
// exclusions).
type Range struct {
	// Subnet is the masked network; its length is the prefix of results.
	Subnet netip.Prefix
	// First and Last bound allocation (inclusive).
	First, Last netip.Addr
	// Gateway is the range's gateway, if any.
	Gateway netip.Addr
	// Exclude lists the excluded blocks as configured.
	Exclude []netip.Prefix

	first, last Num
	blocked     Set // numbers inside [first, last] never handed out
}

// NewRange builds a Range. Invalid first or last default to the subnet's
// bounds; both must lie inside the subnet. Exclusions outside the bounds
// (or of the other family) have no effect.
func NewRange(subnet netip.Prefix, first, last, gateway netip.Addr, exclude []netip.Prefix) (*Range, error) {
	if !subnet.IsValid() {
		return nil, fmt.Errorf("subnet %q: not a valid prefix", subnet)
	}
	subnet = subnet.Masked()
	lo, hi := NumOf(subnet.Addr()), NumOf(LastAddr(subnet))
	if !first.IsValid() {
		first = subnet.Addr()
	}
	if !last.IsValid() {
		last = LastAddr(subnet)
	}
	for _, a := range []netip.Addr{first, last} {
		if !subnet.Contains(a) {
			return nil, fmt.Errorf("address %s: outside subnet %s", a, subnet)
		}
	}
	if last.Less(first) {
		return nil, fmt.Errorf("range end %s: before range start %s", last, first)
	}
	r := &Range{Subnet: subnet, First: first, Last: last, Gateway: gateway, Exclude: exclude,
		first: NumOf(first), last: NumOf(last)}
	bits, max := subnet.Bits(), subnet.Addr().BitLen()
	if bits <= max-2 { // /31, /32, /127 and /128 have no network address
		r.block(lo, lo)
		if subnet.Addr().Is4() {
			r.block(hi, hi)
		}
	}
	if gateway.IsValid() && subnet.Contains(gateway) {
		r.block(NumOf(gateway), NumOf(gateway))
	}
	for _, ex := range exclude {
		if ex.Addr().BitLen() == subnet.Addr().BitLen() {
			r.block(NumOf(ex.Masked().Addr()), NumOf(LastAddr(ex)))
		}
	}
	return r, nil
}

// block marks [lo, hi] as never handed out, clipped to the bounds.
func (r *Range) block(lo, hi Num) {
	if lo.Less(r.first) {
		lo = r.first
	}
	if r.last.Less(hi) {
		hi = r.last
	}
	if !hi.Less(lo) {
		r.blocked.AddRun(lo, hi)
	}
}

// Prefix returns a with the range's prefix length.
func (r *Range) Prefix(a netip.Addr) netip.Prefix {
	return netip.PrefixFrom(a, r.Subnet.Bits())
}

// Size returns how many addresses the range can hand out (saturated).
func (r *Range) Size() uint64 {
	span := r.last.Sub(r.first).Uint64()
	if span == ^uint64(0) {
		return span
	}
	return span + 1 - r.blocked.Count()
}

// AddTo adds to s every number the range may hand out: several ranges
// added to one set count the addresses they offer together, overlaps
// once.
func (r *Range) AddTo(s *Set) {
	lo := r.first
	for _, b := range r.blocked.Runs() {
		if lo.Less(b.Lo) {
			s.AddRun(lo, b.Lo.Prev())
		}
		next, ok := b.Hi.Next()
		if !ok {
			return
		}
		lo = next
	}
	if !r.last.Less(lo) {
		s.AddRun(lo, r.last)
	}
}

// Bounds returns the first and last numbers of the range.
func (r *Range) Bounds() (first, last Num) { return r.first, r.last }

// Check returns nil when a may be handed out from this range, else an
// error saying why not.
func (r *Range) Check(a netip.Addr) error {
	a = a.Unmap()
	n := NumOf(a)
	if a.BitLen() != r.Subnet.Addr().BitLen() || n.Less(r.first) || r.last.Less(n) {
		return fmt.Errorf("address %s: outside range %s-%s", a, r.First, r.Last)
	}
	if !r.blocked.Contains(n) {
		return nil
	}
	switch {
	case a == r.Gateway:
		return fmt.Errorf("address %s: is the gateway", a)
	case a == r.Subnet.Addr():
		return fmt.Errorf("address %s: is the network address of %s", a, r.Subnet)
	case a.Is4() && a == LastAddr(r.Subnet):
		return fmt.Errorf("address %s: is the broadcast address of %s", a, r.Subnet)
	}
	return fmt.Errorf("address %s: is excluded", a)
}

// Next returns the lowest number >= from that the range may hand out and
// used does not hold. It jumps over whole runs of blocked and used
// numbers, so its cost depends on the number of runs, never on how many
// addresses they cover.
func (r *Range) Next(used *Set, from Num) (Num, bool) {
	c := from
	if c.Less(r.first) {
		c = r.first
	}
	for !r.last.Less(c) {
		run, ok := r.blocked.Covering(c)
		if !ok {
			run, ok = used.Covering(c)
		}
		if !ok {
			return c, true
		}
		if c, ok = run.Hi.Next(); !ok {
			break
		}
	}
	return Num{}, false
}

// Pick returns the skip-th (0-based) free number from the bottom of the
// range; when fewer are free it returns the highest free one. ok is false
// when nothing is free. Like Next, it jumps over whole runs: its cost
// depends on the runs below the result, not on skip.
func (r *Range) Pick(used *Set, skip int) (Num, bool) {
	var c Num
	found := false
	left := uint64(max(skip, 0))
	r.freeRuns(used, func(f Run) bool {
		found = true
		if span := f.Hi.Sub(f.Lo).Uint64(); left > span { // span: the run's length minus one
			left -= span + 1
			c = f.Hi
			return true
		}
		c, _ = f.Lo.Add(Num{Lo: left})
		return false
	})
	return c, found
}

// Free returns how many numbers of the range used leaves free, counting no
// further than limit (so its cost depends on the runs below the limit-th
// free number, not on the range's size).
func (r *Range) Free(used *Set, limit uint64) uint64 {
	var n uint64
	if limit == 0 {
		return 0
	}
	r.freeRuns(used, func(f Run) bool {
		if span := f.Hi.Sub(f.Lo).Uint64(); span >= limit-n-1 {
			n = limit
			return false
		}
		n += f.Hi.Sub(f.Lo).Uint64() + 1
		return true
	})
	return n
}

// freeRuns calls fn with each maximal run of numbers of the range that
// used leaves free and that are not blocked, lowest first, until fn
// returns false.
func (r *Range) freeRuns(used *Set, fn func(Run) bool) {
	c, ok := r.Next(used, r.first)
	for ok {
		hi := r.last
		for _, s := range []*Set{&r.blocked, used} {
			if run, found := s.above(c); found && run.Lo.Prev().Less(hi) {
				hi = run.Lo.Prev()
			}
		}
		if !fn(Run{Lo: c, Hi: hi}) {
			return
		}
		next, more := hi.Next()
		if !more {
			return
		}
		c, ok = r.Next(used, next)
	}
}

// LastAddr returns the highest address of p.
func LastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
