package store

import (
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Heat is what a store client knows of the races lost in each space lately.
// When many nodes allocate from one space at once, every allocator reads
// the same index and wants the same lowest free address: each round has one
// winner, and the losers spread (Pick): in a space known to be contended
// (Bias above 0) at their first lost race, in a quiet one at their second
// (a burst of two pods on two nodes still gets the two lowest addresses).
// How wide they spread depends on how many races were lost lately: a window
// of free addresses wide enough for a few allocators is too narrow for
// fifty, whose candidates would collide again. A claim's first candidate is
// always the lowest free address, whatever the level.
//
// The level counts lost races and halves every HeatHalfLife. A store whose
// index is one shared object (kubestore) shares the level through it: each
// index write carries the level it read plus this client's losses not yet
// written (Export, Exported), and each read brings the others' (Observe).
// A store that does not share it (etcdstore) knows its own losses only.
type Heat struct {
	// Now is the clock (nil: time.Now).
	Now func() time.Time

	mu     sync.Mutex
	spaces map[string]*heatSpace
}

type heatSpace struct {
	// shared is the level last read from the space's index, as of at.
	shared float64
	at     time.Time
	// own is this client's losses not yet written to the index, decayed
	// as of ownAt.
	own   float64
	ownAt time.Time
}

// HeatHalfLife is how fast the memory of lost races fades.
const HeatHalfLife = 2 * time.Second

func (h *Heat) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func decay(level float64, at, now time.Time) float64 {
	if d := now.Sub(at); d > 0 {
		return level * math.Exp2(-float64(d)/float64(HeatHalfLife))
	}
	return level // a writer's clock ahead of ours: no decay until we pass it
}

func (h *Heat) space(name string) *heatSpace {
	if h.spaces == nil {
		h.spaces = map[string]*heatSpace{}
	}
	s := h.spaces[name]
	if s == nil {
		s = &heatSpace{}
		h.spaces[name] = s
	}
	return s
}

// Lost records n races lost by one allocation in space.
func (h *Heat) Lost(space string, n int) {
	if n <= 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	s, now := h.space(space), h.now()
	s.own, s.ownAt = decay(s.own, s.ownAt, now)+float64(n), now
}

// Level returns space's level now: the shared one and this client's losses
// not yet written.
func (h *Heat) Level(space string) float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, now := h.space(space), h.now()
	return decay(s.shared, s.at, now) + decay(s.own, s.ownAt, now)
}

// Bias returns the contention of space for Pick: log2 of its level,
// rounded down (0 below a level of 2). A claim that lost a race spreads
// over at least 16 free addresses per race lost lately (16<<bias).
func (h *Heat) Bias(space string) int {
	l := h.Level(space)
	if l < 2 {
		return 0
	}
	return int(math.Log2(l))
}

// Observe records the level an index of space carries (its annotation
// value, see FormatHeat; an empty or malformed one is level 0).
func (h *Heat) Observe(space, value string) {
	level, at := ParseHeat(value)
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.space(space)
	s.shared, s.at = level, at
}

// Export returns the value an index write of space carries: the level of
// base (the index being replaced: its annotation value) plus this
// client's losses not yet written, and how many of those it includes
// (for Exported once the write succeeded).
func (h *Heat) Export(space, base string) (value string, own float64) {
	level, at := ParseHeat(base)
	h.mu.Lock()
	defer h.mu.Unlock()
	s, now := h.space(space), h.now()
	own = decay(s.own, s.ownAt, now)
	s.own, s.ownAt = own, now
	return FormatHeat(decay(level, at, now)+own, now), own
}

// Exported records that own (from Export) is in the index now.
func (h *Heat) Exported(space string, own float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.space(space)
	s.own = max(0, s.own-own)
}

// FormatHeat spells a level as an index annotation: "LEVEL@UNIXMILLI"; a level
// below 0.01 is "" (nothing to carry).
func FormatHeat(level float64, at time.Time) string {
	if level < 0.01 {
		return ""
	}
	return strconv.FormatFloat(level, 'f', 2, 64) + "@" + strconv.FormatInt(at.UnixMilli(), 10)
}

// ParseHeat reads FormatHeat's spelling; anything else is level 0.
func ParseHeat(v string) (level float64, at time.Time) {
	l, ms, ok := strings.Cut(v, "@")
	if !ok {
		return 0, time.Time{}
	}
	f, err1 := strconv.ParseFloat(l, 64)
	m, err2 := strconv.ParseInt(ms, 10, 64)
	if err1 != nil || err2 != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, time.Time{}
	}
	return min(f, 1e6), time.UnixMilli(m)
}
