package plugin

import (
	"context"
	"sync"
)

// attachmentLocks serialises a daemon's requests for one attachment
// (containerID, ifname). A runtime never sends two at once, but when the
// plexus-ipam process that forwarded an ADD is killed, the daemon still
// runs that ADD, and the runtime's DEL that follows arrives meanwhile: run
// concurrently, the DEL could find nothing yet and the ADD then allocate
// an address no DEL will free. With the lock the DEL waits for the ADD and
// frees what it took.
type attachmentLocks struct {
	mu   sync.Mutex // guards held
	held map[[2]string]*attachmentLock
}

type attachmentLock struct {
	turn chan struct{} // holds a token while a request runs
	refs int           // requests holding or waiting for the turn
}

// lock waits until no other request of the attachment runs, or ctx ends
// (its error), and returns the function that ends this one's turn.
// Requests without a container ID (GC, STATUS) are not serialised.
func (l *attachmentLocks) lock(ctx context.Context, containerID, ifName string) (unlock func(), err error) {
	if containerID == "" {
		return func() {}, nil
	}
	key := [2]string{containerID, ifName}
	l.mu.Lock()
	if l.held == nil {
		l.held = map[[2]string]*attachmentLock{}
	}
	e := l.held[key]
	if e == nil {
		e = &attachmentLock{turn: make(chan struct{}, 1)}
		l.held[key] = e
	}
	e.refs++
	l.mu.Unlock()
	done := func() {
		l.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(l.held, key)
		}
		l.mu.Unlock()
	}
	select {
	case e.turn <- struct{}{}:
		return func() { <-e.turn; done() }, nil
	case <-ctx.Done():
		done()
		return nil, ctx.Err()
	}
}

// waiting returns how many requests of the attachment hold or wait for
// its lock (for tests).
func (l *attachmentLocks) waiting(containerID, ifName string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.held[[2]string{containerID, ifName}]; e != nil {
		return e.refs
	}
	return 0
}
