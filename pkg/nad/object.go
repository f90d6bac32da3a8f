package nad

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/plexus-cni/plexus/pkg/fielderr"
)

// object is a decoded JSON object whose keys are validated one by one, with
// errors naming field + "." + key.
type object struct {
	raw   map[string]json.RawMessage
	field string
}

// newObject decodes raw as a JSON object.
func newObject(raw json.RawMessage, field string) (object, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return object{}, fielderr.New(field, string(raw), "must be a JSON object")
	}
	return object{raw: m, field: field}, nil
}

func (o object) sub(key string) string { return joinField(o.field, key) }

// has reports whether key is present with a non-null value.
func (o object) has(key string) bool {
	v, ok := o.raw[key]
	return ok && !bytes.Equal(bytes.TrimSpace(v), []byte("null"))
}

// decode unmarshals key into dst; absent or null keys leave dst alone.
func (o object) decode(key, what string, dst any) error {
	if !o.has(key) {
		return nil
	}
	if err := json.Unmarshal(o.raw[key], dst); err != nil {
		return fielderr.New(o.sub(key), string(o.raw[key]), "must be %s", what)
	}
	return nil
}

func (o object) str(key string) (string, error) {
	var s string
	err := o.decode(key, "a string", &s)
	return s, err
}

// objects decodes key as an array of objects (absent: nil).
func (o object) objects(key string) ([]object, error) {
	var raws []json.RawMessage
	if err := o.decode(key, "an array of objects", &raws); err != nil {
		return nil, err
	}
	out := make([]object, 0, len(raws))
	for i, raw := range raws {
		obj, err := newObject(raw, fmt.Sprintf("%s[%d]", o.sub(key), i))
		if err != nil {
			return nil, err
		}
		out = append(out, obj)
	}
	return out, nil
}
