package jsonrpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrFoldedName is returned by Members for an object with a member whose
// name is not one the caller reads but equals one under the case folding
// encoding/json uses to match struct fields ("Arguments", "ARGUMENTS",
// "argumentſ" with U+017F, "\u212Aey" with the Kelvin sign).
var ErrFoldedName = errors.New("jsonrpc: member name differs from one Countersign reads only in case")

// ErrNotAnObject is returned by Members for a value that is not a JSON object.
var ErrNotAnObject = errors.New("jsonrpc: value is not a JSON object")

// Members reads one JSON object and returns the values of the members
// named in names, matched by exact name as the MCP SDKs of TypeScript,
// Python and Java match them. Members left out are absent from the map.
// The values are views of raw.
//
// Readers that match names loosely (Go's encoding/json, and so SDKs built
// on it) would take a member such as "Arguments" for "arguments", while
// exact readers ignore it: Members refuses such an object with
// ErrFoldedName, and one that names any member twice with
// ErrDuplicateKey, so every reader sees the same members it does.
func Members(raw []byte, names ...string) (map[string]json.RawMessage, error) {
	i := ws(raw, 0)
	if i >= len(raw) {
		return nil, syntaxAt(i)
	}
	if raw[i] != '{' {
		if err := notObject(raw, i); err != ErrNotObject {
			return nil, err
		}
		return nil, ErrNotAnObject
	}
	out := make(map[string]json.RawMessage, len(names))
	w := objectWalk{raw: raw, i: i + 1}
	for {
		key, ok, err := w.name()
		if err != nil {
			return nil, err
		}
		if !ok {
			return out, nil
		}
		start, end, err := w.value()
		if err != nil {
			return nil, err
		}
		for _, name := range names {
			switch {
			case key == name:
				out[name] = raw[start:end:end]
			case foldsTo(key, name):
				return nil, fmt.Errorf("%w: %q is read as %q by some servers and ignored by others", ErrFoldedName, key, name)
			}
		}
	}
}

// FoldsTo reports whether key is not name but encoding/json would match
// it to a struct field called name: readers that match names loosely take
// it for name, exact readers ignore it.
func FoldsTo(key, name string) bool { return foldsTo(key, name) }

// foldsTo reports whether key is not name but encoding/json would match it
// to a struct field called name. encoding/json compares names folded with
// unicode.ToUpper(unicode.ToLower(r)) for each non-ASCII rune; its comment
// says that equals strings.EqualFold, and both are checked.
func foldsTo(key, name string) bool {
	if key == name {
		return false
	}
	if ascii(key) && ascii(name) { // goFold is strings.ToUpper here
		return strings.EqualFold(key, name)
	}
	return strings.EqualFold(key, name) || goFold(key) == goFold(name)
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func goFold(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < utf8.RuneSelf {
			b.WriteRune(unicode.ToUpper(r))
			continue
		}
		b.WriteRune(unicode.ToUpper(unicode.ToLower(r)))
	}
	return b.String()
}

// IsNull reports whether raw is absent or the JSON literal null.
func IsNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null"
}
