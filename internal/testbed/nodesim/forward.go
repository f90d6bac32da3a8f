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
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := l.Accept()
			if err != nil {
				return // closed in cleanup
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				relay(in, addr)
			}()
		}
	}()
	return nil
}

// relay copies both ways between in and a new connection to addr, made
// from the machine's namespace.
func relay(in net.Conn, addr string) {
	defer in.Close()
	out, err := net.Dial("tcp", addr)
	if err != nil {
		return
	}
	defer out.Close()
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
