package testbed

import (
	"os"
	"strings"
	"testing"
)

// HostLocalLeases lists the addresses host-local holds in dir (a network's
// directory under its dataDir): every file but its bookkeeping
// (last_reserved_ip.*, lock). A missing directory holds none.
func HostLocalLeases(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatalf("reading host-local's leases in %s: %v", dir, err)
	}
	var ips []string
	for _, e := range entries {
		if n := e.Name(); !strings.HasPrefix(n, "last_reserved") && n != "lock" {
			ips = append(ips, n)
		}
	}
	return ips
}
