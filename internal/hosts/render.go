package hosts

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"

	"github.com/tailscale/hujson"
)

// A small ordered JSON model for the entries Countersign writes, so that new
// text has a stable key order and the file's own indentation.

// field is one member of an object; val is a string, []string or object.
type field struct {
	key string
	val any
}

// object is an ordered JSON object.
type object []field

// quote writes s as a JSON string without HTML escaping.
func quote(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return strings.TrimSuffix(buf.String(), "\n")
}

// style says how to lay a value out.
type style struct {
	indent    string // of the line the value starts on
	multiline bool   // objects one member per line
	tight     bool   // on one line, no spaces after ':' and ','
}

// render writes v. Objects are one member per line when multiline is set;
// arrays of strings always stay on one line.
func render(v any, st style, unit, nl string) string {
	comma, colon := ", ", ": "
	if st.tight {
		comma, colon = ",", ":"
	}
	switch v := v.(type) {
	case string:
		return quote(v)
	case []string:
		parts := make([]string, len(v))
		for i, s := range v {
			parts[i] = quote(s)
		}
		return "[" + strings.Join(parts, comma) + "]"
	case object:
		if len(v) == 0 {
			return "{}"
		}
		var b strings.Builder
		b.WriteString("{")
		inner := st
		inner.indent += unit
		for i, f := range v {
			switch {
			case st.multiline && i > 0:
				b.WriteString(",")
			case i > 0:
				b.WriteString(comma)
			}
			if st.multiline {
				b.WriteString(nl + inner.indent)
			}
			b.WriteString(quote(f.key) + colon + render(f.val, inner, unit, nl))
		}
		if st.multiline {
			b.WriteString(nl + st.indent)
		}
		b.WriteString("}")
		return b.String()
	}
	panic("hosts: render of unsupported type") // programmer error: only the types above are built
}

// valueOf returns a valueFunc inserting v in the document's style.
func (l layout) valueOf(v any) valueFunc {
	return func(st style) (hujson.Value, error) {
		return hujson.Parse([]byte(render(v, st, l.unit, l.nl)))
	}
}

// plain converts the model to what encoding/json decodes into any.
func plain(v any) any {
	switch v := v.(type) {
	case string:
		return v
	case []string:
		out := make([]any, len(v))
		for i, s := range v {
			out[i] = s
		}
		return out
	case object:
		out := make(map[string]any, len(v))
		for _, f := range v {
			out[f.key] = plain(f.val)
		}
		return out
	}
	return nil
}

// decode returns the plain value of a parsed hujson value (comments and
// trailing commas allowed), or nil if it does not decode.
func decode(v hujson.Value) any {
	c := v.Clone()
	c.Standardize()
	var out any
	if err := json.Unmarshal(c.Pack(), &out); err != nil {
		return nil
	}
	return out
}

// equalValue reports whether a parsed value means the same as the model.
func equalValue(v hujson.Value, want any) bool {
	return reflect.DeepEqual(decode(v), plain(want))
}
