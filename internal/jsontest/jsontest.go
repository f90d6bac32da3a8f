// Package jsontest compares JSON documents by meaning for tests: raw
// values that re-encoding may respell (whitespace, escapes, the order of
// keys) are equal when they decode to the same value.
package jsontest

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/google/go-cmp/cmp"
)

// Same reports whether a and b are the same JSON value. Two empty inputs
// are the same; an empty and a non-empty one are not; input that does not
// decode is compared byte for byte.
func Same(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	va, erra := decode(a)
	vb, errb := decode(b)
	if erra != nil || errb != nil {
		return bytes.Equal(a, b)
	}
	return cmp.Equal(va, vb)
}

// Comparer makes cmp compare json.RawMessage values with Same.
func Comparer() cmp.Option {
	return cmp.Comparer(func(a, b json.RawMessage) bool { return Same(a, b) })
}

// decode reads one value, keeping numbers as written so that no precision
// is lost, and refuses trailing data.
func decode(raw []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if rest := bytes.TrimSpace(raw[d.InputOffset():]); len(rest) > 0 {
		return nil, fmt.Errorf("data after the JSON value: %q", rest)
	}
	return v, nil
}
