// Package client is the caller's side of plexusd's socket: it posts a
// wire.Request to one of the daemon's endpoints and decodes the answer,
// telling "the daemon could not be reached" (nothing of the request got
// there: the caller may run it itself) from a failure after the request
// was sent (the daemon may have done part of it). It is small on purpose:
// plugin binaries link it.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/plexus-cni/plexus/internal/daemon/wire"
)

// DefaultDialTimeout bounds connecting to the socket.
const DefaultDialTimeout = 2 * time.Second

// UnreachableError means the daemon could not be connected to: nothing of
// the request reached it.
type UnreachableError struct {
	Socket string
	Err    error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("plexusd is not reachable at %s: %v", e.Socket, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// Client posts requests to plexusd's socket.
type Client struct {
	// DialTimeout bounds connecting (default DefaultDialTimeout).
	DialTimeout time.Duration
	// Path is the endpoint (default wire.Path).
	Path string
}

// Call posts req to the daemon at socket. A connection failure is an
// *UnreachableError; a failure after the request was sent names the socket
// and says the daemon may have done part of the work.
func (c *Client) Call(ctx context.Context, socket string, req *wire.Request) (*wire.Response, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode the request for plexusd: %w", err)
	}
	dialTimeout := c.DialTimeout
	if dialTimeout <= 0 {
		dialTimeout = DefaultDialTimeout
	}
	client := &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			d := net.Dialer{Timeout: dialTimeout}
			conn, err := d.DialContext(ctx, "unix", socket)
			if err != nil {
				return nil, &UnreachableError{Socket: socket, Err: err}
			}
			return conn, nil
		},
	}}
	path := c.Path
	if path == "" {
		path = wire.Path
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://plexusd"+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build the request for plexusd: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hresp, err := client.Do(hreq)
	if err != nil {
		var unreachable *UnreachableError
		if errors.As(err, &unreachable) {
			return nil, unreachable
		}
		return nil, fmt.Errorf("plexusd at %s failed during %s (it may have done part of it): %w", socket, req.Command, err)
	}
	defer hresp.Body.Close()
	return decode(hresp, socket)
}

func decode(hresp *http.Response, socket string) (*wire.Response, error) {
	raw, err := io.ReadAll(io.LimitReader(hresp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("read the answer of plexusd at %s: %w", socket, err)
	}
	resp := &wire.Response{}
	if err := json.Unmarshal(raw, resp); err != nil || (hresp.StatusCode != http.StatusOK && resp.Error == nil) {
		return nil, fmt.Errorf("plexusd at %s answered HTTP %d with %q", socket, hresp.StatusCode, firstBytes(raw, 200))
	}
	return resp, nil
}

func firstBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
