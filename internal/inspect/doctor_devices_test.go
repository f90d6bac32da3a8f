package inspect

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestDeviceChecks(t *testing.T) {
	vf := []NetworkConfig{{Source: "ns/vf", ResourceName: "intel.com/vf"}, {Source: "ns/plain"}, {Source: "ns/nic", ResourceName: "plexus.dev/testnic"}}
	offer := func(m map[string]int, err error) func(context.Context, string) (map[string]int, error) {
		return func(context.Context, string) (map[string]int, error) { return m, err }
	}
	for name, c := range map[string]struct {
		configs []NetworkConfig
		alloc   func(context.Context, string) (map[string]int, error)
		want    []string
	}{
		"no resource":  {[]NetworkConfig{{Source: "ns/plain"}}, offer(nil, errors.New("boom")), []string{"skip kubelet"}},
		"kubelet down": {vf, offer(nil, errors.New("connection refused")), []string{"fail kubelet connection refused"}},
		"offered": {vf, offer(map[string]int{"intel.com/vf": 4}, nil), []string{
			"ok kubelet", "ok devices intel.com/vf 4 allocatable", "fail devices plexus.dev/testnic ns/nic"}},
	} {
		t.Run(name, func(t *testing.T) {
			var got []string
			add := func(status, check, subject, format string, args ...any) {
				got = append(got, fmt.Sprintf("%s %s %s %s", status, check, subject, fmt.Sprintf(format, args...)))
			}
			deviceChecks(context.Background(), c.configs, "/k.sock", c.alloc, add)
			if len(got) != len(c.want) {
				t.Fatalf("findings %q, want %d", got, len(c.want))
			}
			for i, w := range c.want {
				for _, word := range strings.Fields(w) {
					if !strings.Contains(got[i], word) {
						t.Errorf("finding %d %q lacks %q", i, got[i], word)
					}
				}
			}
		})
	}
}
