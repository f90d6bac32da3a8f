// Package poll waits in tests for a condition to hold, with a bound: the
// one way tests here wait for something another process or goroutine does
// (never a bare sleep).
package poll

import (
	"testing"
	"time"
)

// Interval is how often the condition is checked.
const Interval = 10 * time.Millisecond

// Until checks cond until it holds, failing t (with what, and the last
// state cond reported) when limit passes first.
func Until(t testing.TB, limit time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			if state != "" {
				t.Fatalf("timed out after %v waiting until %s (last: %s)", limit, what, state)
			}
			t.Fatalf("timed out after %v waiting until %s", limit, what)
		}
		time.Sleep(Interval)
	}
}

// True adapts a condition without state for Until.
func True(cond func() bool) func() (bool, string) {
	return func() (bool, string) { return cond(), "" }
}
