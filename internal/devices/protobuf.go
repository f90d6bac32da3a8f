package devices

// The few protobuf wire-format operations the PodResources client needs,
// written out here: google.golang.org/protobuf's protowire would bring a
// package (internal/detrand) whose initialisation reads the executable on
// every exec of plexus.

import "errors"

// Wire types.
const (
	wireVarint     = 0
	wireFixed64    = 1
	wireBytes      = 2
	wireStartGroup = 3
	wireEndGroup   = 4
	wireFixed32    = 5
)

var errProto = errors.New("bad protobuf")

// consumeVarint returns the varint at the start of b and its length, or a
// negative length when b does not start with one.
func consumeVarint(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		c := b[i]
		if i == 9 && c > 1 {
			return 0, -1 // more than 64 bits
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, i + 1
		}
	}
	return 0, -1
}

// consumeTag returns the field number and wire type of the tag at the
// start of b, and its length (negative when malformed).
func consumeTag(b []byte) (num int, typ int, n int) {
	v, n := consumeVarint(b)
	if n < 0 || v>>3 < 1 || v>>3 > 1<<29-1 {
		return 0, 0, -1
	}
	return int(v >> 3), int(v & 7), n
}

// consumeBytes returns the length-delimited value at the start of b and
// the length it takes.
func consumeBytes(b []byte) ([]byte, int) {
	l, n := consumeVarint(b)
	if n < 0 || l > uint64(len(b)-n) {
		return nil, -1
	}
	return b[n : n+int(l)], n + int(l)
}

// skipValue returns the length of the value of field num with wire type
// typ at the start of b (a group up to its matching end), or -1.
func skipValue(num, typ int, b []byte) int {
	switch typ {
	case wireVarint:
		_, n := consumeVarint(b)
		return n
	case wireFixed64:
		if len(b) < 8 {
			return -1
		}
		return 8
	case wireFixed32:
		if len(b) < 4 {
			return -1
		}
		return 4
	case wireBytes:
		_, n := consumeBytes(b)
		return n
	case wireStartGroup:
		for at := 0; ; {
			inner, t, n := consumeTag(b[at:])
			if n < 0 {
				return -1
			}
			at += n
			if t == wireEndGroup {
				if inner != num {
					return -1
				}
				return at
			}
			m := skipValue(inner, t, b[at:])
			if m < 0 {
				return -1
			}
			at += m
		}
	}
	return -1 // a stray end of group, or a reserved wire type
}

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}
