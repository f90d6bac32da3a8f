package store

import (
	"math"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestHeatBiasAndDecay(t *testing.T) {
	c := &clock{t: time.UnixMilli(1_700_000_000_000)}
	h := &Heat{Now: c.now}
	if b := h.Bias("net:a"); b != 0 {
		t.Fatalf("bias of an unknown space = %d, want 0", b)
	}
	h.Lost("net:a", 1)
	if b := h.Bias("net:a"); b != 0 {
		t.Fatalf("bias after one lost race = %d, want 0", b)
	}
	h.Lost("net:a", 1)
	if b := h.Bias("net:a"); b != 1 {
		t.Fatalf("bias after two lost races = %d, want 1", b)
	}
	h.Lost("net:a", 6)
	if b := h.Bias("net:a"); b != 3 {
		t.Fatalf("bias at level 8 = %d, want 3", b)
	}
	if b := h.Bias("net:b"); b != 0 {
		t.Fatalf("another space's bias = %d, want 0", b)
	}
	c.t = c.t.Add(HeatHalfLife)
	if l := h.Level("net:a"); math.Abs(l-4) > 1e-9 {
		t.Fatalf("level a half-life later = %v, want 4", l)
	}
	c.t = c.t.Add(2 * HeatHalfLife)
	if b := h.Bias("net:a"); b != 0 {
		t.Fatalf("bias at level 1 = %d, want 0: a space cools down", b)
	}
}

// Two clients share the level through the index they both write: each
// write carries what it read plus the writer's own losses, once.
func TestHeatSharedThroughTheIndex(t *testing.T) {
	c := &clock{t: time.UnixMilli(1_700_000_000_000)}
	a, b := &Heat{Now: c.now}, &Heat{Now: c.now}
	a.Lost("net:x", 3)
	written, own := a.Export("net:x", "")
	a.Exported("net:x", own)
	a.Observe("net:x", written)
	if l := a.Level("net:x"); math.Abs(l-3) > 1e-9 {
		t.Fatalf("writer's level after its write = %v, want 3 (its losses counted once)", l)
	}

	b.Observe("net:x", written)
	if l := b.Level("net:x"); math.Abs(l-3) > 1e-9 || b.Bias("net:x") == 0 {
		t.Fatalf("reader's level = %v (bias %d), want 3 and a spread start", l, b.Bias("net:x"))
	}
	b.Lost("net:x", 2)
	c.t = c.t.Add(HeatHalfLife)
	written2, own2 := b.Export("net:x", written)
	if level, _ := ParseHeat(written2); math.Abs(level-(1.5+1)) > 0.01 {
		t.Fatalf("second write carries %q, want 2.50 (3 halved, plus 2 halved)", written2)
	}
	// A write that failed keeps the losses for the next one.
	if l := b.Level("net:x"); math.Abs(l-(1.5+1)) > 1e-9 {
		t.Fatalf("level before the write is confirmed = %v, want 2.5", l)
	}
	b.Exported("net:x", own2)
	b.Observe("net:x", written2)
	if l := b.Level("net:x"); math.Abs(l-2.5) > 0.01 {
		t.Fatalf("level after the write = %v, want 2.5", l)
	}
}

func TestHeatSpelling(t *testing.T) {
	at := time.UnixMilli(1_700_000_000_123)
	if v := FormatHeat(7.256, at); v != "7.26@1700000000123" {
		t.Fatalf("FormatHeat = %q", v)
	}
	if v := FormatHeat(0.001, at); v != "" {
		t.Fatalf("FormatHeat of nothing = %q, want empty", v)
	}
	for _, bad := range []string{"", "7", "x@1", "1@x", "-1@5", "NaN@5", "Inf@5"} {
		if l, _ := ParseHeat(bad); l != 0 {
			t.Errorf("ParseHeat(%q) = %v, want 0", bad, l)
		}
	}
	if l, ts := ParseHeat("2.5@1700000000123"); l != 2.5 || !ts.Equal(at) {
		t.Fatalf("ParseHeat = %v, %v", l, ts)
	}
	// A writer whose clock is ahead: no decay until ours passes it.
	c := &clock{t: at}
	h := &Heat{Now: c.now}
	h.Observe("net:x", FormatHeat(4, at.Add(time.Minute)))
	if l := h.Level("net:x"); l != 4 {
		t.Fatalf("level stamped in the future = %v, want 4", l)
	}
}
