package storetest

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/plexus-cni/plexus/pkg/ipam/alloc"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
)

// LoadResult is what one load run measured.
type LoadResult struct {
	Allocations int
	Elapsed     time.Duration
	P50, P99    time.Duration
	// Requests is the sum of the clients' Stats().Requests, when they
	// report it.
	Requests int64
}

// PerSecond returns allocations per second.
func (r LoadResult) PerSecond() float64 { return float64(r.Allocations) / r.Elapsed.Seconds() }

// Load makes n allocations in space from r with parallel clients (each its
// own store client) and measures them; it stops at the first error or
// when ctx ends.
func Load(ctx context.Context, open func() store.Store, space string, r *alloc.Range, n, parallel int) (LoadResult, error) {
	lat := make([]time.Duration, n)
	clients := make([]store.Store, parallel)
	for i := range clients {
		clients[i] = open()
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int, n)
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	start := time.Now()
	var wg sync.WaitGroup
	for _, s := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t0 := time.Now()
				rq := store.Request{Space: space, Range: r, Holder: store.Holder{ContainerID: fmt.Sprintf("load-%d", i), IfName: "net1", Node: "node-a"}}
				if _, err := s.Allocate(ctx, rq); err != nil {
					cancel(fmt.Errorf("allocation %d: %w", i, err))
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	res := LoadResult{Allocations: n, Elapsed: time.Since(start)}
	if err := context.Cause(ctx); err != nil {
		return res, err
	}
	slices.Sort(lat)
	res.P50, res.P99 = lat[n/2], lat[n*99/100]
	for _, s := range clients {
		if st, ok := s.(interface{ Stats() store.Stats }); ok {
			res.Requests += st.Stats().Requests
		}
	}
	return res, nil
}

// Bench runs the load benchmark: 1000 allocations by 50 clients, on an
// empty /16 and on a /16 filled to 90% (opts.FillIndexOnly as in the
// suite), reporting allocations/s, p50 and p99 latency and requests per
// allocation. Each run is bounded by 5 minutes.
func Bench(b *testing.B, newBacking Backing, opts Options) {
	for _, full := range []bool{false, true} {
		name := "empty"
		if full {
			name = "90pct"
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				benchOnce(b, newBacking, opts, full)
			}
		})
	}
}

func benchOnce(b *testing.B, newBacking Backing, opts Options, full bool) {
	b.StopTimer()
	openHooked := newBacking(b)
	open := func() store.Store { return openHooked(nil) }
	r, err := alloc.NewRange(netipPrefix("10.30.0.0/16"), netipAddr(""), netipAddr(""), netipAddr(""), nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(b.Context(), 5*time.Minute)
	defer cancel()
	if full {
		if err := Fill90(ctx, open(), space, r, opts.FillIndexOnly); err != nil {
			b.Fatalf("filling: %v", err)
		}
	}
	b.StartTimer()
	res, err := Load(ctx, open, space, r, 1000, 50)
	b.StopTimer()
	if err != nil {
		b.Fatalf("load: %v", err)
	}
	b.ReportMetric(res.PerSecond(), "allocs/s")
	b.ReportMetric(float64(res.P50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(res.P99.Microseconds())/1000, "p99-ms")
	if res.Requests > 0 {
		b.ReportMetric(float64(res.Requests)/float64(res.Allocations), "requests/alloc")
	}
}

func netipPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func netipAddr(s string) netip.Addr {
	if s == "" {
		return netip.Addr{}
	}
	return netip.MustParseAddr(s)
}
