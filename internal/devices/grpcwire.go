package devices

// A minimal unary gRPC client: the kubelet's PodResources API is the only
// gRPC this package speaks, and the plexus CNI binary, which the runtime
// execs for every pod, must not link google.golang.org/grpc: its package
// initialisation alone costs milliseconds per exec. Unary gRPC is one
// HTTP/2 POST whose body and answer are each one length-prefixed protobuf
// message and whose status comes in the trailers; net/http speaks HTTP/2
// over cleartext, so that is all there is to it.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// gRPC status codes this client acts on.
const (
	codeNotFound      = 5
	codeUnimplemented = 12
)

var codeNames = [...]string{"OK", "Canceled", "Unknown", "InvalidArgument",
	"DeadlineExceeded", "NotFound", "AlreadyExists", "PermissionDenied",
	"ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange",
	"Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated"}

// statusError is a gRPC status other than OK, as the server sent it.
type statusError struct {
	Code    int
	Message string
}

func (e *statusError) Error() string {
	name := "Code(" + strconv.Itoa(e.Code) + ")"
	if e.Code >= 0 && e.Code < len(codeNames) {
		name = codeNames[e.Code]
	}
	return fmt.Sprintf("rpc error: code = %s desc = %s", name, e.Message)
}

// hasCode reports whether err is a gRPC status with code.
func hasCode(err error, code int) bool {
	var s *statusError
	return errors.As(err, &s) && s.Code == code
}

// grpcClient calls unary methods of a gRPC server on a unix socket.
type grpcClient struct {
	http http.Client
}

// newGRPCClient returns a client of socket; Close it when done.
func newGRPCClient(socket string) *grpcClient {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true) // prior knowledge: no upgrade, no TLS
	var d net.Dialer
	return &grpcClient{http: http.Client{Transport: &http.Transport{ // no Proxy: never HTTP_PROXY's
		Protocols: &p,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", socket)
		},
	}}}
}

// Close closes the client's connection.
func (c *grpcClient) Close() { c.http.CloseIdleConnections() }

// call sends the protobuf message req to method ("service/Method") and
// returns the protobuf answer, of at most maxMessage bytes. A status other
// than OK is a *statusError.
func (c *grpcClient) call(ctx context.Context, method string, req []byte) ([]byte, error) {
	body := make([]byte, 5, 5+len(req)) // flag 0: not compressed; length
	binary.BigEndian.PutUint32(body[1:], uint32(len(req)))
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://localhost/"+method, bytes.NewReader(append(body, req...)))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", "application/grpc")
	hreq.Header.Set("TE", "trailers")
	resp, err := c.http.Do(hreq)
	if err != nil {
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err // not the made-up URL
		}
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	defer resp.Body.Close()
	msg, err := readReply(resp)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	return msg, nil
}

// readReply reads the one message of a unary answer and its status.
func readReply(resp *http.Response) ([]byte, error) {
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP status %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/grpc") {
		return nil, fmt.Errorf("not a gRPC answer: content-type %q", ct)
	}
	msg, err := readMessage(resp.Body)
	if err != nil {
		return nil, err
	}
	// The trailers are complete once the body is; a trailers-only answer
	// (an error before any message) has its status in the headers.
	st := resp.Trailer
	if st.Get("Grpc-Status") == "" {
		st = resp.Header
	}
	code, err := strconv.Atoi(st.Get("Grpc-Status"))
	if err != nil {
		return nil, fmt.Errorf("bad or missing grpc-status %q", st.Get("Grpc-Status"))
	}
	if code != 0 {
		text := st.Get("Grpc-Message")
		if t, err := url.PathUnescape(text); err == nil {
			text = t
		}
		return nil, &statusError{Code: code, Message: text}
	}
	if msg == nil {
		return nil, errors.New("status OK without an answer")
	}
	return msg, nil
}

// readMessage reads the body's one length-prefixed message; nil if the
// body is empty.
func readMessage(body io.Reader) ([]byte, error) {
	var prefix [5]byte
	if _, err := io.ReadFull(body, prefix[:]); err == io.EOF {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if prefix[0] != 0 {
		return nil, errors.New("compressed answer (none was asked for)")
	}
	n := binary.BigEndian.Uint32(prefix[1:])
	if n > maxMessage {
		return nil, fmt.Errorf("answer of %d bytes, more than the limit of %d", n, maxMessage)
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(body, msg); err != nil {
		return nil, fmt.Errorf("answer cut short: %w", noEOF(err))
	}
	// The end of the body is where the trailers come.
	if m, err := io.ReadFull(body, prefix[:1]); m > 0 {
		return nil, errors.New("more than one message in a unary answer")
	} else if err != io.EOF {
		return nil, err
	}
	return msg, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
