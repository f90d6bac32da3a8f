package nodesim

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
)

// forward makes addr (host:port on the machine's loopback, such as the test
// bed's API server) reachable at the same address inside the node's
// namespace, as a real node reaches its control plane. Connections are
// relayed in user space; nothing is added to the machine's namespace.
func (n *Node) forward(t testing.TB, addr string) error {
	var l net.Listener
	err := ns.WithNetNSPath(n.NetNSPath, func(ns.NetNS) error {
		var err error
		l, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		return fmt.Errorf("forward %s into node %s: %w", addr, n.Name, err)
	}
	r := &relays{conns: map[net.Conn]struct{}{}}
	t.Cleanup(func() {
		l.Close()
		// A server may keep its half open after the client closed its
		// own (etcd does): close every relayed connection, then wait.
		r.closeAll()
		r.wg.Wait()
	})
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			in, err := l.Accept()
			if err != nil {
				return // closed in cleanup
			}
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				r.relay(in, addr)
			}()
		}
	}()
	return nil
}

// relays tracks the open relayed connections of one forwarder.
type relays struct {
	wg     sync.WaitGroup
	mu     sync.Mutex // guards conns and closed
	conns  map[net.Conn]struct{}
	closed bool
}

func (r *relays) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *relays) untrack(c net.Conn) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
	c.Close()
}

func (r *relays) closeAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for c := range r.conns {
		c.Close()
	}
}

// relay copies both ways between in and a new connection to addr, made
// from the machine's namespace.
func (r *relays) relay(in net.Conn, addr string) {
	if !r.track(in) {
		in.Close()
		return
	}
	defer r.untrack(in)
	out, err := net.Dial("tcp", addr)
	if err != nil || !r.track(out) {
		if out != nil {
			out.Close()
		}
		return
	}
	defer r.untrack(out)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, err := io.Copy(dst, src)
		if tcp, ok := dst.(*net.TCPConn); ok && (err == nil || errors.Is(err, net.ErrClosed)) {
			_ = tcp.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(out, in)
	go pipe(in, out)
	<-done
	<-done
}
