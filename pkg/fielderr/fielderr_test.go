package fielderr

import (
	"strings"
	"testing"
)

func TestError(t *testing.T) {
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{"no value", New("networks[0].name", "", "is required"), "networks[0].name: is required"},
		{"value", New("a.mac", "zz", "bad %s", "mac"), `a.mac: invalid value "zz": bad mac`},
		{"escapes", New("f", "q\"\\\n\xffé", "m"), `f: invalid value "q\"\\\x0a\xffé": m`},
		{"truncated", New("f", strings.Repeat("a", 250), "m"), `f: invalid value "` + strings.Repeat("a", 200) + `...": m`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %s, want %s", got, tt.want)
			}
		})
	}
}
