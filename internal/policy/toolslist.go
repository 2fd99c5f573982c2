package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// ErrMalformedToolsList is returned by FilterToolsList for a result it
// cannot filter safely. The relay should fail closed: not pass the result on.
var ErrMalformedToolsList = errors.New("policy: tools/list result cannot be filtered")

// FilterToolsList removes hidden tools from a tools/list result (the value
// of the JSON-RPC "result" member). Only whole entries of result.tools are
// removed: every other byte — nextCursor, _meta, unknown members, white
// space and the kept tools themselves — is copied unchanged, so pagination
// and fields Countersign does not know survive. With nothing to remove, the
// input is returned as is.
//
// A tool entry that is not an object, has no string "name", or has more
// than one member that could be read as its name (including "Name", which
// case-insensitive decoders accept) is an error, because the host might
// read a different name than the filter did.
func FilterToolsList(result []byte, hidden func(name string) bool) ([]byte, error) {
	return FilterTools(result, func(name string, _ []byte) bool { return hidden(name) })
}

// FilterTools is FilterToolsList deciding on each tool's name and its
// whole definition (for annotations such as readOnlyHint).
func FilterTools(result []byte, hidden func(name string, def []byte) bool) ([]byte, error) {
	if !json.Valid(result) {
		return nil, fmt.Errorf("%w: not valid JSON", ErrMalformedToolsList)
	}
	dec := json.NewDecoder(bytes.NewReader(result))
	if t, _ := dec.Token(); t != json.Delim('{') {
		return nil, fmt.Errorf("%w: not a JSON object", ErrMalformedToolsList)
	}
	var spans [][2]int
	seen := false
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformedToolsList, err)
		}
		key, _ := kt.(string)
		if key != "tools" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrMalformedToolsList, err)
			}
			continue
		}
		if seen {
			return nil, fmt.Errorf("%w: it has two tools members", ErrMalformedToolsList)
		}
		seen = true
		t, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformedToolsList, err)
		}
		if t == nil {
			continue // "tools": null — nothing to filter
		}
		if t != json.Delim('[') {
			return nil, fmt.Errorf("%w: tools is not an array", ErrMalformedToolsList)
		}
		for dec.More() {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrMalformedToolsList, err)
			}
			end := int(dec.InputOffset())
			spans = append(spans, [2]int{end - len(raw), end})
		}
		if _, err := dec.Token(); err != nil { // ]
			return nil, fmt.Errorf("%w: %v", ErrMalformedToolsList, err)
		}
	}
	removed := make([]bool, len(spans))
	changed := false
	for i, sp := range spans {
		name, err := toolName(result[sp[0]:sp[1]])
		if err != nil {
			return nil, fmt.Errorf("%w: tools[%d]: %v", ErrMalformedToolsList, i, err)
		}
		if hidden(name, result[sp[0]:sp[1]]) {
			removed[i] = true
			changed = true
		}
	}
	if !changed {
		return result, nil
	}
	out := make([]byte, 0, len(result))
	out = append(out, result[:spans[0][0]]...)
	kept := false
	for i, sp := range spans {
		if removed[i] {
			continue
		}
		if kept {
			// The separator that preceded this entry: a comma and the
			// original white space.
			out = append(out, result[spans[i-1][1]:sp[0]]...)
		}
		out = append(out, result[sp[0]:sp[1]]...)
		kept = true
	}
	out = append(out, result[spans[len(spans)-1][1]:]...)
	return out, nil
}

// toolName reads the one name of a tool entry.
func toolName(raw []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, _ := dec.Token(); t != json.Delim('{') {
		return "", errors.New("entry is not an object")
	}
	var name string
	count := 0
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return "", err
		}
		key, _ := kt.(string)
		if !strings.EqualFold(key, "name") {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return "", err
			}
			continue
		}
		count++
		if key != "name" || count > 1 {
			return "", errors.New("entry has more than one member that reads as its name")
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			return "", err
		}
		s, ok := v.(string)
		if !ok {
			return "", errors.New("name is not a string")
		}
		name = s
	}
	if count == 0 {
		return "", errors.New("entry has no name")
	}
	return name, nil
}
