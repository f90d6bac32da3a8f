package cache

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A sandbox's commands take turns; a waiter gives up with its context; a
// DEL that removes the lock file while holding it lets the next waiter in
// on the new file, never two holders at once.
func TestLockTakesTurns(t *testing.T) {
	s := New(t.TempDir())
	unlock, err := s.Lock(context.Background(), "sb")
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Lock(short, "sb"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a second Lock while taken: %v, want the context's deadline", err)
	}
	if other, err := s.Lock(context.Background(), "another"); err != nil {
		t.Fatalf("another sandbox's lock: %v", err)
	} else {
		other()
	}

	got := make(chan func(), 2)
	for range 2 {
		go func() {
			u, err := s.Lock(context.Background(), "sb")
			if err != nil {
				t.Error(err)
			}
			got <- u
		}()
	}
	time.Sleep(50 * time.Millisecond)
	select {
	case <-got:
		t.Fatal("a waiter got the lock while it was held")
	default:
	}
	if err := s.Unlink("sb"); err != nil {
		t.Fatal(err)
	}
	unlock()
	first := <-got
	select {
	case <-got:
		t.Fatal("two waiters hold the lock after its file was removed")
	case <-time.After(100 * time.Millisecond):
	}
	late, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := s.Lock(late, "sb"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a newcomer got the lock that a waiter holds on the removed file: %v", err)
	}
	first()
	(<-got)()
	if _, err := s.Lock(context.Background(), "../x"); err == nil {
		t.Fatal("Lock took an invalid container ID")
	}
}
