// Package client is the caller's side of plexusd's socket: it posts a
// wire.Request to one of the daemon's endpoints and decodes the answer,
// telling "the daemon could not be reached" (nothing of the request got
// there: the caller may run it itself) from a failure after the request
// was sent (the daemon may have done part of it). It is small on purpose:
// plugin binaries link it.
package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
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
//
// It speaks HTTP/1.1 itself, one request per connection, rather than
// through net/http: that package (and the TLS stack it brings) would cost
// the plugin binaries more start-up time than the whole request takes.
func (c *Client) Call(ctx context.Context, socket string, req *wire.Request) (*wire.Response, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode the request for plexusd: %w", err)
	}
	dialTimeout := c.DialTimeout
	if dialTimeout <= 0 {
		dialTimeout = DefaultDialTimeout
	}
	path := c.Path
	if path == "" {
		path = wire.Path
	}
	d := net.Dialer{Timeout: dialTimeout}
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, &UnreachableError{Socket: socket, Err: err}
	}
	defer conn.Close()
	// The context bounds the whole exchange: its deadline becomes the
	// connection's, and cancelling it closes the connection.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	failed := func(err error) error {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return fmt.Errorf("plexusd at %s failed during %s (it may have done part of it): %w", socket, req.Command, err)
	}
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: plexusd\r\nContent-Type: application/json\r\n"+
		"Content-Length: %d\r\nConnection: close\r\n\r\n", path, len(body))
	if _, err := conn.Write(append([]byte(head), body...)); err != nil {
		return nil, failed(err)
	}
	status, raw, err := readResponse(bufio.NewReader(conn))
	if err != nil {
		return nil, failed(err)
	}
	resp := &wire.Response{}
	if err := json.Unmarshal(raw, resp); err != nil || (status != 200 && resp.Error == nil) {
		return nil, fmt.Errorf("plexusd at %s answered HTTP %d with %q", socket, status, firstBytes(raw, 200))
	}
	return resp, nil
}

// maxBody bounds an answer.
const maxBody = 16 << 20

// readResponse reads one HTTP/1.1 response: its status code and body
// (Content-Length, chunked, or up to the end of the connection).
func readResponse(r *bufio.Reader) (int, []byte, error) {
	tp := textproto.NewReader(r)
	line, err := tp.ReadLine()
	if err != nil {
		return 0, nil, fmt.Errorf("read the status line: %w", err)
	}
	proto, rest, _ := strings.Cut(line, " ")
	codeText, _, _ := strings.Cut(rest, " ")
	status, err := strconv.Atoi(codeText)
	if !strings.HasPrefix(proto, "HTTP/1.") || err != nil {
		return 0, nil, fmt.Errorf("malformed status line %q", firstBytes([]byte(line), 100))
	}
	header, err := tp.ReadMIMEHeader()
	if err != nil {
		return 0, nil, fmt.Errorf("read the header: %w", err)
	}
	var body io.Reader = r
	switch {
	case strings.EqualFold(header.Get("Transfer-Encoding"), "chunked"):
		body = &chunked{r: r}
	case header.Get("Content-Length") != "":
		n, err := strconv.ParseInt(header.Get("Content-Length"), 10, 64)
		if err != nil || n < 0 || n > maxBody {
			return 0, nil, fmt.Errorf("bad Content-Length %q", header.Get("Content-Length"))
		}
		raw := make([]byte, n)
		if _, err := io.ReadFull(r, raw); err != nil {
			return 0, nil, fmt.Errorf("read the body: %w", err)
		}
		return status, raw, nil
	}
	raw, err := io.ReadAll(io.LimitReader(body, maxBody))
	if err != nil {
		return 0, nil, fmt.Errorf("read the body: %w", err)
	}
	return status, raw, nil
}

// chunked decodes a chunked body (RFC 9112 §7.1); trailers are skipped.
type chunked struct {
	r    *bufio.Reader
	left int64
	done bool
}

func (c *chunked) Read(p []byte) (int, error) {
	for c.left == 0 {
		if c.done {
			return 0, io.EOF
		}
		line, err := c.r.ReadString('\n')
		if err != nil {
			return 0, io.ErrUnexpectedEOF
		}
		size, _, _ := strings.Cut(strings.TrimSpace(line), ";")
		n, err := strconv.ParseInt(size, 16, 64)
		if err != nil || n < 0 || n > maxBody {
			return 0, fmt.Errorf("bad chunk size %q", firstBytes([]byte(line), 40))
		}
		if n == 0 {
			c.done = true
			continue
		}
		c.left = n
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left == 0 && err == nil {
		if _, err := c.r.Discard(2); err != nil { // the chunk's CRLF
			return n, io.ErrUnexpectedEOF
		}
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func firstBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
