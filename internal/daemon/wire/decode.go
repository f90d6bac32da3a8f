package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"unicode/utf8"

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

// Validate reports a request that JSON cannot carry unchanged: a value
// that is not UTF-8 would reach plexusd with U+FFFD in place of its bytes
// (a netns path naming another file). The error names the variable.
func (r *Request) Validate() error {
	for _, v := range []struct{ name, value string }{
		{"CNI_COMMAND", r.Command}, {"CNI_CONTAINERID", r.ContainerID}, {"CNI_NETNS", r.Netns},
		{"CNI_IFNAME", r.IfName}, {"CNI_ARGS", r.Args}, {"CNI_PATH", r.Path},
	} {
		if !utf8.ValidString(v.value) {
			return fielderr.New(v.name, v.value, "not UTF-8, cannot be passed to plexusd")
		}
	}
	for k, v := range r.Env {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fielderr.New(k, v, "not UTF-8, cannot be passed to plexusd")
		}
	}
	return nil
}
