package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/plexus-cni/plexus/internal/testbed"
)

// TestBenchIPAMPods times 1000 pods' IPAM from the first ADD to the last:
// the plexus-ipam binary run as the runtime runs it (env + stdin), 50 at a
// time, on each store; then every address is checked unique and DEL'd.
// Allocation only: no packets flow, so the pool is 10.128.0.0/16.
func TestBenchIPAMPods(t *testing.T) {
	if os.Getenv("PLEXUS_BENCH") != "1" {
		t.Skip("the benchmark runs with PLEXUS_BENCH=1 (make bench)")
	}
	env := testbed.Require(t)
	pods, parallel := intEnv("PLEXUS_BENCH_IPAM_PODS", 1000), 50
	stores := []struct{ name, ipam string }{
		{"kubernetes", fmt.Sprintf(`"kubernetes":{"kubeconfig":%q,"namespace":%q}`, env.Kubeconfig, env.Namespace(t, "ipam-bench"))},
		{"etcd", fmt.Sprintf(`"etcd_host":%q`, testbed.StartEtcd(t))},
	}
	fmt.Printf("\n%-11s %6s %10s %10s %10s %12s %10s\n", "store", "pods", "first→last", "pods/s", "ADD p50", "ADD p99", "DEL p50")
	for i, s := range stores {
		conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"bench-ipam-%d","ipam":{"type":"plexus-ipam","range":"10.128.0.0/16",%s}}`, i, s.ipam)
		r := ipamRun(t, []byte(conf), pods, parallel)
		fmt.Printf("%-11s %6d %10s %10.0f %10s %12s %10s\n", s.name, pods, r.wall.Round(time.Millisecond),
			float64(pods)/r.wall.Seconds(), ms(pct(r.add, .5)), ms(pct(r.add, .99)), ms(pct(r.del, .5)))
	}
}

type ipamResult struct {
	wall     time.Duration
	add, del []time.Duration
}

func ipamRun(t *testing.T, conf []byte, pods, parallel int) ipamResult {
	bin := filepath.Join(testbed.Root(), "bin", "plexus-ipam")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	args := func(cmd string, i int) *invoke.Args {
		return &invoke.Args{Command: cmd, ContainerID: fmt.Sprintf("bench%058d", i), NetNS: "/var/run/netns/bench",
			IfName: "net1", Path: filepath.Dir(bin),
			PluginArgsStr: fmt.Sprintf("IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=pod-%d;K8S_POD_UID=uid-%d", i, i)}
	}
	var res ipamResult
	seen := map[string]int{}
	var mu sync.Mutex
	run := func(cmd string, into *[]time.Duration) time.Duration {
		start := time.Now()
		jobs := make(chan int)
		var wg sync.WaitGroup
		for w := 0; w < parallel; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range jobs {
					t0 := time.Now()
					var out types.Result
					var err error
					if cmd == "ADD" {
						out, err = invoke.ExecPluginWithResult(ctx, bin, conf, args(cmd, i), nil)
					} else {
						err = invoke.ExecPluginWithoutResult(ctx, bin, conf, args(cmd, i), nil)
					}
					d := time.Since(t0)
					mu.Lock()
					*into = append(*into, d)
					if err != nil {
						t.Errorf("%s %d: %v", cmd, i, err)
					} else if cmd == "ADD" {
						r, _ := current.NewResultFromResult(out)
						for _, ip := range r.IPs {
							if prev, dup := seen[ip.Address.String()]; dup {
								t.Errorf("address %s handed to pod %d and pod %d", ip.Address, prev, i)
							}
							seen[ip.Address.String()] = i
						}
					}
					mu.Unlock()
				}
			}()
		}
		for i := 0; i < pods; i++ {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
		return time.Since(start)
	}
	res.wall = run("ADD", &res.add)
	run("DEL", &res.del)
	if len(seen) != pods && !t.Failed() {
		t.Errorf("%d distinct addresses for %d pods", len(seen), pods)
	}
	return res
}
