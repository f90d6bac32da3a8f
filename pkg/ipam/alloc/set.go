package alloc

import (
	"errors"
	"fmt"
	"sort"
)

// Run is an inclusive interval of numbers.
type Run struct{ Lo, Hi Num }

// Set is a set of numbers kept as sorted, disjoint, non-adjacent runs, so
// a pool filled from its bottom is one run whatever its size. Lookups are
// O(log runs). The zero Set is empty and ready to use.
type Set struct{ runs []Run }

// Runs returns the runs in ascending order (callers must not modify it).
func (s *Set) Runs() []Run { return s.runs }

// Clone returns an independent copy of s.
func (s *Set) Clone() *Set {
	return &Set{runs: append([]Run(nil), s.runs...)}
}

// find returns the index of the first run whose Hi is >= n.
func (s *Set) find(n Num) int {
	return sort.Search(len(s.runs), func(i int) bool { return !s.runs[i].Hi.Less(n) })
}

// Covering returns the run containing n.
func (s *Set) Covering(n Num) (Run, bool) {
	i := s.find(n)
	if i < len(s.runs) && !n.Less(s.runs[i].Lo) {
		return s.runs[i], true
	}
	return Run{}, false
}

// above returns the lowest run that starts after n, for an n that no run
// covers.
func (s *Set) above(n Num) (Run, bool) {
	if i := s.find(n); i < len(s.runs) && n.Less(s.runs[i].Lo) {
		return s.runs[i], true
	}
	return Run{}, false
}

// Contains reports whether n is in s.
func (s *Set) Contains(n Num) bool {
	_, ok := s.Covering(n)
	return ok
}

// Count returns how many numbers s holds, saturated to 64 bits.
func (s *Set) Count() uint64 {
	var total uint64
	for _, r := range s.runs {
		c := r.Hi.Sub(r.Lo).Uint64()
		if c == ^uint64(0) || total+c+1 < total {
			return ^uint64(0)
		}
		total += c + 1
	}
	return total
}

// Add inserts n and reports whether s changed.
func (s *Set) Add(n Num) bool {
	if s.Contains(n) {
		return false
	}
	s.AddRun(n, n)
	return true
}

// AddRun inserts every number in [lo, hi] (lo <= hi).
func (s *Set) AddRun(lo, hi Num) {
	// Runs that overlap or touch [lo, hi] are merged into it.
	start := s.find(lo)
	if start > 0 {
		if prevHi, ok := s.runs[start-1].Hi.Next(); ok && prevHi.Cmp(lo) == 0 {
			start--
		}
	}
	end := start
	for end < len(s.runs) {
		r := s.runs[end]
		hiNext, ok := hi.Next()
		if ok && hiNext.Less(r.Lo) {
			break
		}
		if r.Lo.Less(lo) {
			lo = r.Lo
		}
		if hi.Less(r.Hi) {
			hi = r.Hi
		}
		end++
	}
	merged := Run{Lo: lo, Hi: hi}
	s.runs = append(s.runs[:start], append([]Run{merged}, s.runs[end:]...)...)
}

// Remove deletes n and reports whether s changed.
func (s *Set) Remove(n Num) bool {
	i := s.find(n)
	if i == len(s.runs) || n.Less(s.runs[i].Lo) {
		return false
	}
	r := s.runs[i]
	switch {
	case r.Lo == n && r.Hi == n:
		s.runs = append(s.runs[:i], s.runs[i+1:]...)
	case r.Lo == n:
		s.runs[i].Lo, _ = n.Next()
	case r.Hi == n:
		s.runs[i].Hi = n.Prev()
	default:
		next, _ := n.Next()
		tail := Run{Lo: next, Hi: r.Hi}
		s.runs[i].Hi = n.Prev()
		s.runs = append(s.runs[:i+1], append([]Run{tail}, s.runs[i+1:]...)...)
	}
	return true
}

// setMagic starts every encoded Set (format version 1).
const setMagic = 0x01

// MarshalBinary encodes s compactly: the run count, then for each run the
// gap from the end of the previous run and its length minus one, as
// varints. A pool filled from its bottom costs a few bytes; a maximally
// fragmented IPv4 /16 (every other address taken) costs 2 bytes a run.
func (s *Set) MarshalBinary() ([]byte, error) {
	b := append(make([]byte, 0, 8+4*len(s.runs)), setMagic)
	b = appendUvarint(b, Num{Lo: uint64(len(s.runs))})
	var prev Num // end of the previous run plus one
	for _, r := range s.runs {
		b = appendUvarint(b, r.Lo.Sub(prev))
		b = appendUvarint(b, r.Hi.Sub(r.Lo))
		prev, _ = r.Hi.Next()
	}
	return b, nil
}

// UnmarshalBinary decodes what MarshalBinary wrote; an empty input is the
// empty set.
func (s *Set) UnmarshalBinary(b []byte) error {
	s.runs = nil
	if len(b) == 0 {
		return nil
	}
	if b[0] != setMagic {
		return fmt.Errorf("index format %#x: unknown (want %#x)", b[0], setMagic)
	}
	b = b[1:]
	count, n, ok := readUvarint(b)
	if !ok || count.Hi != 0 || count.Lo > uint64(len(b)) {
		return errors.New("index: bad run count")
	}
	b = b[n:]
	runs := make([]Run, 0, count.Lo)
	var prev Num
	for i := uint64(0); i < count.Lo; i++ {
		gap, n1, ok1 := readUvarint(b)
		if !ok1 {
			return fmt.Errorf("index: run %d: truncated", i)
		}
		length, n2, ok2 := readUvarint(b[n1:])
		if !ok2 {
			return fmt.Errorf("index: run %d: truncated", i)
		}
		b = b[n1+n2:]
		lo, over1 := prev.Add(gap)
		hi, over2 := lo.Add(length)
		if over1 || over2 || (i > 0 && gap == Num{}) {
			return fmt.Errorf("index: run %d: out of order", i)
		}
		runs = append(runs, Run{Lo: lo, Hi: hi})
		var more bool
		if prev, more = hi.Next(); !more && i+1 < count.Lo {
			return fmt.Errorf("index: run %d: out of order", i+1)
		}
	}
	if len(b) != 0 {
		return fmt.Errorf("index: %d trailing bytes", len(b))
	}
	s.runs = runs
	return nil
}
