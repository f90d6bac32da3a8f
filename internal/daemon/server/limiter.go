package server

import (
	"context"
	"sync"

	"github.com/plexus-cni/plexus/internal/cnierr"
)

// limiter admits at most cap(slots) requests at once and lets at most
// maxWait more wait; a request beyond that is refused at once.
type limiter struct {
	slots chan struct{}

	mu      sync.Mutex // guards waiting
	waiting int
	maxWait int
}

func newLimiter(concurrency, queue int) *limiter {
	return &limiter{slots: make(chan struct{}, concurrency), maxWait: queue}
}

// acquire takes a slot, waiting in the queue while there is room in it.
// It fails with CNI code 11 when the queue is full or ctx ends first.
func (l *limiter) acquire(ctx context.Context) error {
	select {
	case l.slots <- struct{}{}:
		return nil
	default:
	}
	l.mu.Lock()
	if l.waiting >= l.maxWait {
		l.mu.Unlock()
		return cnierr.New(cnierr.TryAgainLater,
			"plexusd is busy: %d requests running and %d waiting; try again later", cap(l.slots), l.maxWait)
	}
	l.waiting++
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.waiting--
		l.mu.Unlock()
	}()
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return cnierr.Wrap(cnierr.TryAgainLater, context.Cause(ctx))
	}
}

func (l *limiter) release() { <-l.slots }
