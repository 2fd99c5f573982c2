// Package plist reads Apple property lists, XML and binary ("bplist00"),
// as macOS writes managed preferences under /Library/Managed Preferences.
// It only reads, and treats its input as untrusted: sizes, nesting and
// object references are bounded and checked, and anything malformed is an
// error rather than a guess.
//
// Values decode to Go values: a dictionary to map[string]any, an array to
// []any, a string to string, an integer to int64 (or uint64 above the
// int64 range), a real to float64, a boolean to bool, data to []byte and a
// date to time.Time.
//
//	v, err := plist.Decode(b)
//	prefs, ok := v.(map[string]any)
package plist

import (
	"bytes"
	"errors"
	"fmt"
)

// MaxSize is the largest property list Decode reads.
const MaxSize = 4 << 20

// maxDepth bounds nesting of arrays and dictionaries.
const maxDepth = 64

// Decode reads an XML or binary property list.
func Decode(b []byte) (any, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("property list is %d bytes; at most %d are read", len(b), MaxSize)
	}
	if bytes.HasPrefix(b, []byte("bplist")) {
		return decodeBinary(b)
	}
	trimmed := bytes.TrimLeft(bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")), " \t\r\n")
	if bytes.HasPrefix(trimmed, []byte("<")) {
		return decodeXML(trimmed)
	}
	return nil, errors.New("not a property list (neither XML nor binary)")
}
