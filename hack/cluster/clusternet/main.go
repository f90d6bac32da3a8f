// Command clusternet joins the real-cluster tier's control plane, which runs
// in the machine's own network namespace on 127.0.0.1, to its nodes, which run
// in network namespaces of their own, without adding an address or a route
// to the machine's namespace:
//
//   - -egress-socket: an HTTP CONNECT proxy on a unix socket, named as the API
//     server's egress for "cluster" traffic (kubelets, pods, webhooks); it
//     dials from inside the namespace given by -egress-netns, which routes to
//     the nodes and their pods.
//   - -relay NETNS=LISTEN=TARGET: listens on LISTEN inside the namespace
//     NETNS and relays each connection to TARGET in the machine's namespace;
//     hack/cluster.sh makes the API server reachable in every node at the
//     `kubernetes` Service address this way.
//
// It runs until SIGTERM or SIGINT.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
)

const dialTimeout = 10 * time.Second

type relayFlags []string

func (r *relayFlags) String() string     { return strings.Join(*r, ",") }
func (r *relayFlags) Set(v string) error { *r = append(*r, v); return nil }

func main() {
	egressSocket := flag.String("egress-socket", "", "unix socket of the HTTP CONNECT proxy")
	egressNetNS := flag.String("egress-netns", "", "network namespace (path) the proxy dials from")
	var relays relayFlags
	flag.Var(&relays, "relay", "NETNS-PATH=LISTEN-ADDR=TARGET-ADDR (repeatable)")
	flag.Parse()
	if err := run(*egressSocket, *egressNetNS, relays); err != nil {
		log.Fatalf("clusternet: %v", err)
	}
}

func run(egressSocket, egressNetNS string, relays []string) error {
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for _, r := range relays {
		parts := strings.SplitN(r, "=", 3)
		if len(parts) != 3 {
			return fmt.Errorf("-relay %q: want NETNS-PATH=LISTEN-ADDR=TARGET-ADDR", r)
		}
		l, err := listenIn(parts[0], parts[1])
		if err != nil {
			return err
		}
		listeners = append(listeners, l)
		target := parts[2]
		go serve(l, func(c net.Conn) {
			relay(c, func() (net.Conn, error) { return net.DialTimeout("tcp", target, dialTimeout) })
		})
		log.Printf("relaying %s in %s to %s", parts[1], parts[0], target)
	}
	if egressSocket != "" {
		if egressNetNS == "" {
			return errors.New("-egress-socket needs -egress-netns")
		}
		_ = os.Remove(egressSocket)
		l, err := net.Listen("unix", egressSocket)
		if err != nil {
			return err
		}
		listeners = append(listeners, l)
		srv := &http.Server{Handler: connectProxy{netns: egressNetNS}, ReadHeaderTimeout: dialTimeout}
		go srv.Serve(l) //nolint:errcheck // ends when the listener closes
		log.Printf("CONNECT proxy on %s, dialing from %s", egressSocket, egressNetNS)
	}
	<-ctx.Done()
	return nil
}

// listenIn opens a TCP listener inside the network namespace at nsPath.
func listenIn(nsPath, addr string) (net.Listener, error) {
	var l net.Listener
	err := ns.WithNetNSPath(nsPath, func(ns.NetNS) error {
		var err error
		l, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listening on %s in %s: %w", addr, nsPath, err)
	}
	return l, nil
}

func serve(l net.Listener, handle func(net.Conn)) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go handle(c)
	}
}

// relay copies between in and a connection from dial until either side ends.
func relay(in net.Conn, dial func() (net.Conn, error)) {
	defer in.Close()
	out, err := dial()
	if err != nil {
		log.Printf("relay from %s: %v", in.RemoteAddr(), err)
		return
	}
	defer out.Close()
	pipe(in, out)
}

// pipe copies both ways and returns once both directions are done.
func pipe(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	cp := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		} else {
			dst.Close()
		}
	}
	go cp(a, b)
	go cp(b, a)
	wg.Wait()
}

// connectProxy answers CONNECT host:port by dialing it from inside netns.
type connectProxy struct{ netns string }

func (p connectProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "only CONNECT is served", http.StatusMethodNotAllowed)
		return
	}
	var out net.Conn
	err := ns.WithNetNSPath(p.netns, func(ns.NetNS) error {
		var err error
		out, err = net.DialTimeout("tcp", r.Host, dialTimeout)
		return err
	})
	if err != nil {
		log.Printf("CONNECT %s: %v", r.Host, err)
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		out.Close()
		http.Error(w, "cannot hijack the connection", http.StatusInternalServerError)
		return
	}
	in, buf, err := hj.Hijack()
	if err != nil {
		out.Close()
		return
	}
	if _, err := in.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		in.Close()
		out.Close()
		return
	}
	go func() {
		defer in.Close()
		defer out.Close()
		pipe(bufferedConn{in, buf.Reader}, out)
	}()
}

// bufferedConn reads what the server had buffered before the hijack first.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c bufferedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
