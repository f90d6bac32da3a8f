// Package fielderr holds the error type that names the field and the value
// of every invalid input plexus rejects: annotations, NAD configs, plugin
// configs and requests.
package fielderr

import (
	"fmt"
	"unicode/utf8"
)

// Error reports one invalid value. Field is a path such as
// "networks[1].mac" or "networks"; Value is the offending value as written.
type Error struct {
	Field string
	Value string
	Msg   string
}

func (e *Error) Error() string {
	if e.Value == "" {
		return e.Field + ": " + e.Msg
	}
	return e.Field + ": invalid value " + quote(e.Value) + ": " + e.Msg
}

// quote renders s in double quotes, at most 200 bytes of it, escaping
// quotes, backslashes, control characters and bytes that are not UTF-8.
func quote(s string) string {
	const max = 200
	truncated := len(s) > max
	if truncated {
		s = s[:max]
	}
	const hex = "0123456789abcdef"
	b := make([]byte, 0, len(s)+2)
	b = append(b, '"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || (r == utf8.RuneError && size == 1):
			b = append(b, '\\', 'x', hex[c>>4], hex[c&15])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	if truncated {
		b = append(b, "..."...)
	}
	return string(append(b, '"'))
}

// New returns an *Error for field with value and a formatted message.
func New(field, value, format string, args ...any) *Error {
	return &Error{Field: field, Value: value, Msg: fmt.Sprintf(format, args...)}
}
