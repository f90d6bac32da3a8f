package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/plexus-cni/plexus/pkg/fielderr"
)

// MaxRequestBytes bounds a request body (a configuration is a few KiB).
const MaxRequestBytes = 4 << 20

// DecodeRequest reads one request from r: a single JSON object of at most
// MaxRequestBytes with nothing after it, whose config is the network
// configuration object. What it accepts encodes back to the same request.
func DecodeRequest(r io.Reader) (*Request, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxRequestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read the request: %w", err)
	}
	if len(data) > MaxRequestBytes {
		return nil, fielderr.New("request", "", "larger than %d bytes", MaxRequestBytes)
	}
	req := &Request{}
	if err := json.Unmarshal(data, req); err != nil {
		return nil, fielderr.New("request", "", "not a JSON request object: %v", err)
	}
	if c := bytes.TrimSpace(req.Config); len(c) == 0 || c[0] != '{' {
		return nil, fielderr.New("config", string(req.Config), "want the network configuration object")
	}
	return req, nil
}
