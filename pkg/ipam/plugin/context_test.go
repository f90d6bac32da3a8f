package plugin

import (
	"context"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/pkg/ipam/config"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
	"github.com/plexus-cni/plexus/pkg/ipam/store/memstore"
)

// blockingStore is a memstore whose Allocate of slot 1 waits until its
// context ends, as a call to an unreachable API server does; unblock (the
// test's way out) lets it go on regardless.
type blockingStore struct {
	*memstore.Store
	blocked chan struct{}
	unblock chan struct{}
}

func (b *blockingStore) Allocate(ctx context.Context, req store.Request) (store.Allocation, error) {
	if req.Slot == 1 {
		b.blocked <- struct{}{}
		select {
		case <-ctx.Done():
		case <-b.unblock:
		}
	}
	return b.Store.Allocate(ctx, req)
}

const dualStack = `{"cniVersion":"1.0.0","name":"ds","ipam":{"type":"plexus-ipam",
	"ipRanges":[{"range":"192.0.2.0/29"},{"range":"2001:db8::/64"}]}}`

// An ADD whose context is cancelled, or times out, while a store call
// hangs returns with code 11 (retry) and leaves nothing allocated: the
// address its first slot took is released again.
func TestAddEndsWithItsContext(t *testing.T) {
	for _, tc := range []struct {
		name string
		// start returns the request's context and what ends it (nil: its
		// own deadline, the plugin's Timeout).
		start func(p *Plugin) (context.Context, context.CancelFunc)
	}{
		{"cancelled", func(*Plugin) (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }},
		{"timed out", func(p *Plugin) (context.Context, context.CancelFunc) {
			p.Timeout = 100 * time.Millisecond
			return context.Background(), nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			bs := &blockingStore{Store: h.st, blocked: make(chan struct{}, 1), unblock: make(chan struct{})}
			t.Cleanup(func() { close(bs.unblock) })
			h.p.OpenStore = func(*config.Conf, Logf) (store.Store, error) { return bs, nil }
			ctx, end := tc.start(h.p)
			done := make(chan error, 1)
			go func() {
				_, _, err := h.p.Do(ctx, Request{Command: "ADD", Args: args("c1", "net1", dualStack, ""), Env: map[string]string{"NODENAME": "n"}})
				done <- err
			}()
			var err error
			select {
			case <-bs.blocked:
				if end != nil {
					end()
				}
				select {
				case err = <-done:
				case <-time.After(time.Minute):
					t.Fatal("ADD still running a minute after its context ended: the context does not reach the store")
				}
			case err = <-done: // timed out before slot 1 (a slow machine): the same answer is due
			}
			if code(err) != types.ErrTryAgainLater {
				t.Errorf("ADD: %v (code %d), want code 11", err, code(err))
			}
			if left, _ := h.st.List(t.Context(), store.Filter{}); len(left) != 0 {
				t.Errorf("the ended ADD left %+v allocated", left)
			}
		})
	}
}
