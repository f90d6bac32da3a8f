package jsontest

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSame(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{`{"a":1,"b":"<"}`, ` { "b" : "\u003c", "a" : 1 } `, true},
		{`{"a":1}`, `{"a":1.0}`, false},
		{`{"a":1}`, `{"a":2}`, false},
		{`null`, ``, false},
		{``, ``, true},
		{`{"a":1} x`, `{"a":1}`, false},
		{`{`, `{`, true},
	}
	for _, tt := range tests {
		if got := Same([]byte(tt.a), []byte(tt.b)); got != tt.want {
			t.Errorf("Same(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
	type doc struct{ Raw json.RawMessage }
	if !cmp.Equal(doc{json.RawMessage(`[1, 2]`)}, doc{json.RawMessage(`[1,2]`)}, Comparer()) {
		t.Error("Comparer: respelled arrays differ")
	}
}
