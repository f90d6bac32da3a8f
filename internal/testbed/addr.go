package testbed

import (
	"net"
	"net/url"
	"testing"
)

// APIAddr returns the API server's host:port (on 127.0.0.1), for making it
// reachable from simulated nodes (nodesim.NodeOptions.Forward).
func (e *Env) APIAddr() string {
	u, err := url.Parse(e.RESTConfig.Host)
	if err != nil {
		return e.RESTConfig.Host
	}
	return u.Host
}

// FreeAddr returns a host:port on 127.0.0.1 that was free a moment ago,
// for a process a test starts (its metrics address).
func FreeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
