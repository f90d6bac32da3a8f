// Package alloc is the pure core of plexus-ipam: 128-bit address
// arithmetic, allocation ranges with their exclusions, the compact set of
// allocated addresses that the stores keep as an index, and the choice of
// the lowest free address. It does no I/O and keeps no global state.
package alloc

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// Num is an address as an unsigned 128-bit integer. IPv4 addresses live in
// the IPv4-mapped block ::ffff:0:0/96, so one number line holds both
// families without overlap.
type Num struct{ Hi, Lo uint64 }

// NumOf returns the number of a.
func NumOf(a netip.Addr) Num {
	b := a.As16()
	return Num{Hi: binary.BigEndian.Uint64(b[:8]), Lo: binary.BigEndian.Uint64(b[8:])}
}

// Addr returns the address of n; numbers in ::ffff:0:0/96 are IPv4.
func (n Num) Addr() netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], n.Hi)
	binary.BigEndian.PutUint64(b[8:], n.Lo)
	return netip.AddrFrom16(b).Unmap()
}

// Cmp compares n and m (-1, 0, +1).
func (n Num) Cmp(m Num) int {
	switch {
	case n.Hi < m.Hi:
		return -1
	case n.Hi > m.Hi:
		return 1
	case n.Lo < m.Lo:
		return -1
	case n.Lo > m.Lo:
		return 1
	}
	return 0
}

// Less reports whether n < m.
func (n Num) Less(m Num) bool { return n.Cmp(m) < 0 }

// Add returns n+m, and whether it overflowed 128 bits.
func (n Num) Add(m Num) (Num, bool) {
	lo, c := bits.Add64(n.Lo, m.Lo, 0)
	hi, c := bits.Add64(n.Hi, m.Hi, c)
	return Num{Hi: hi, Lo: lo}, c != 0
}

// Sub returns n-m (wrapping when m > n).
func (n Num) Sub(m Num) Num {
	lo, b := bits.Sub64(n.Lo, m.Lo, 0)
	hi, _ := bits.Sub64(n.Hi, m.Hi, b)
	return Num{Hi: hi, Lo: lo}
}

// Next returns n+1, and false when n is the largest number.
func (n Num) Next() (Num, bool) {
	s, over := n.Add(Num{Lo: 1})
	return s, !over
}

// Prev returns n-1 (n must not be zero).
func (n Num) Prev() Num { return n.Sub(Num{Lo: 1}) }

// Uint64 returns n saturated to 64 bits.
func (n Num) Uint64() uint64 {
	if n.Hi != 0 {
		return ^uint64(0)
	}
	return n.Lo
}

// appendUvarint appends n as a base-128 varint (at most 19 bytes).
func appendUvarint(b []byte, n Num) []byte {
	for n.Hi != 0 || n.Lo >= 0x80 {
		b = append(b, byte(n.Lo)|0x80)
		n = Num{Hi: n.Hi >> 7, Lo: n.Lo>>7 | n.Hi<<57}
	}
	return append(b, byte(n.Lo))
}

// readUvarint decodes a varint written by appendUvarint; ok is false for
// truncated or over-long input.
func readUvarint(b []byte) (n Num, used int, ok bool) {
	var shift uint
	for i, c := range b {
		if shift >= 128 {
			return Num{}, 0, false
		}
		v := Num{Lo: uint64(c & 0x7f)}
		v = shiftLeft(v, shift)
		n = Num{Hi: n.Hi | v.Hi, Lo: n.Lo | v.Lo}
		if c < 0x80 {
			return n, i + 1, true
		}
		shift += 7
	}
	return Num{}, 0, false
}

func shiftLeft(n Num, s uint) Num {
	switch {
	case s == 0:
		return n
	case s >= 128:
		return Num{}
	case s >= 64:
		return Num{Hi: n.Lo << (s - 64)}
	}
	return Num{Hi: n.Hi<<s | n.Lo>>(64-s), Lo: n.Lo << s}
}
