package jsonrpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// parseDecoder is the parser Parse replaced, walking encoding/json's
// Decoder.Token: the reference FuzzParseMatchesDecoder holds Parse to.
func parseDecoder(raw []byte) (Message, error) {
	m := Message{Raw: raw}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return m, fmt.Errorf("jsonrpc: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return m, ErrNotObject
	}
	seen := make(map[string]bool, 6)
	var version json.RawMessage
	var method json.RawMessage
	hasID := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return m, fmt.Errorf("jsonrpc: %w", err)
		}
		key, _ := tok.(string)
		if isCaseVariant(key) {
			return m, fmt.Errorf("%w: %q", ErrMemberCase, key)
		}
		if seen[key] {
			return m, fmt.Errorf("%w %q", ErrDuplicateKey, key)
		}
		seen[key] = true
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return m, fmt.Errorf("jsonrpc: member %q: %w", key, err)
		}
		end := int(dec.InputOffset())
		start := end - len(val)
		switch key {
		case "jsonrpc":
			version = val
		case "id":
			hasID = true
			m.ID = val
			m.idSpan = span{start, end}
		case "method":
			method = val
		case "params":
			m.Params = val
			m.paramsSpan = span{start, end}
		case "result":
			m.Result = val
			m.resultSpan = span{start, end}
		case "error":
			m.Error = val
		}
	}
	if _, err := dec.Token(); err != nil { // closing brace
		return m, fmt.Errorf("jsonrpc: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return m, ErrTrailingBytes
	}
	if string(version) != `"2.0"` {
		return m, ErrVersion
	}
	if hasID && !validID(m.ID) && !(method == nil && string(m.ID) == "null") {
		return m, ErrBadID
	}
	switch {
	case method != nil:
		if err := json.Unmarshal(method, &m.Method); err != nil || m.Method == "" {
			return m, fmt.Errorf("%w: method must be a non-empty string", ErrShape)
		}
		if m.Result != nil || m.Error != nil {
			return m, ErrShape
		}
		if hasID {
			m.Kind = KindRequest
		} else {
			m.Kind = KindNotification
		}
	case hasID && (m.Result != nil) != (m.Error != nil):
		m.Kind = KindResponse
	default:
		return m, ErrShape
	}
	return m, nil
}

// errClass names the sentinel an error from Parse or parseDecoder matches;
// "syntax" for input that is not JSON.
func errClass(err error) string {
	for _, s := range []struct {
		err  error
		name string
	}{{ErrNotObject, "not object"}, {ErrVersion, "version"}, {ErrDuplicateKey, "duplicate"},
		{ErrMemberCase, "case"}, {ErrBadID, "bad id"}, {ErrShape, "shape"}, {ErrTrailingBytes, "trailing"}} {
		if errors.Is(err, s.err) {
			return s.name
		}
	}
	if err == nil {
		return "ok"
	}
	return "syntax"
}

// referenceSeeds are inputs where a single-pass scanner could part from
// encoding/json: escapes and invalid UTF-8 in names, numbers, literals,
// nesting, and what follows a first value that is not an object.
var referenceSeeds = []string{
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"a":[1,2.5e-3,true,null]}}}`,
	`{"jsonrpc":"2.0","id":1,"\u0069d":2,"method":"x"}`,
	"{\"jsonrpc\":\"2.0\",\"\xff\":1,\"\xfe\":2,\"method\":\"x\"}",
	`{"jsonrpc":"2.0","Id":1,"method":"x"}`,
	"{\"jsonrpc\":\"2.0\",\"\u212aey\":1,\"method\":\"x\"}",
	`{"jsonrpc":"2.0","method":"\u0078","id":"a"}`,
	`{"jsonrpc":"2.0","method":null,"id":1}`,
	`{"jsonrpc":"2.0","method":1,"id":1}`,
	`{"jsonrpc":"2.0","id":null,"result":{}}`,
	`{"jsonrpc":"2.0","id":01,"result":{}}`,
	`{"jsonrpc":"2.0","id":-0.0e+1,"result":{}}`,
	`{"jsonrpc":"2.0","id":1,"result":{}} `,
	`{"jsonrpc":"2.0","id":1,"result":{}}}`,
	`{"jsonrpc":"2.0","id":1,"result":{},}`,
	`{"jsonrpc":"2.0","id":1 "result":{}}`,
	`{"jsonrpc":"2.0","id":1,"result":[1,]}`,
	`{"jsonrpc":"2.0","id":1,"result":"a\tb"}`,
	`{"jsonrpc":"2.0","id":1,"result":"\ud800"}`,
	`{"jsonrpc":"2.0","id":1,"result":"\x"}`,
	`{"jsonrpc":"2.0","id":1,"result":tru}`,
	`{"jsonrpc":"2.0","id":1,"result":truex}`,
	`{}`, `[]`, `[`, `1x`, `-`, `"abc`, `"abc"x`, `tru`, `true false`, ` `, ``, "\ufeff{}", `}`, `{"a"}`, `{"a":}`, `{,}`,
	`{"jsonrpc":"2.0","a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"a":0,"method":"m"}`,
	`{"jsonrpc":"2.0","a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"i":0,"method":"m"}`,
	`{"jsonrpc":"2.0","id":1,"result":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`,
	`{"jsonrpc":"2.0","id":1,"result":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`,
}

func TestParseMatchesDecoderOnSeeds(t *testing.T) {
	for _, s := range append(slices.Clone(parseSeeds), referenceSeeds...) {
		compareWithDecoder(t, []byte(s))
	}
}

// FuzzParseMatchesDecoder holds the single-pass Parse to the decoder-based
// parser it replaced: on any input both accept or both refuse, for the same
// reason, and accepted messages are read the same way.
func FuzzParseMatchesDecoder(f *testing.F) {
	for _, s := range append(slices.Clone(parseSeeds), referenceSeeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(compareWithDecoder)
}

func compareWithDecoder(t *testing.T, raw []byte) {
	got, gotErr := Parse(raw)
	want, wantErr := parseDecoder(raw)
	if errClass(gotErr) != errClass(wantErr) {
		t.Fatalf("%q: Parse says %v (%s), the decoder %v (%s)", trim(raw), gotErr, errClass(gotErr), wantErr, errClass(wantErr))
	}
	if gotErr != nil {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: Parse and the decoder differ:\nParse   %+v\ndecoder %+v", trim(raw), got, want)
	}
}

func trim(raw []byte) []byte {
	if len(raw) > 200 {
		return raw[:200]
	}
	return raw
}

// BenchmarkParse compares Parse with the decoder-based parser on a
// tools/call.
func BenchmarkParse(b *testing.B) {
	raw := []byte(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"echo","arguments":{"message":"bench"},"_meta":{"progressToken":7}}}`)
	for _, p := range []struct {
		name  string
		parse func([]byte) (Message, error)
	}{{"scanner", Parse}, {"decoder", parseDecoder}} {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.parse(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// membersDecoder is the Members that walked encoding/json's Decoder.Token:
// the reference FuzzMembersMatchesDecoder holds Members to.
func membersDecoder(raw []byte, names ...string) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("jsonrpc: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, ErrNotAnObject
	}
	out := make(map[string]json.RawMessage, len(names))
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("jsonrpc: %w", err)
		}
		key, _ := tok.(string)
		if seen[key] {
			return nil, fmt.Errorf("%w %q", ErrDuplicateKey, key)
		}
		seen[key] = true
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, fmt.Errorf("jsonrpc: member %q: %w", key, err)
		}
		for _, name := range names {
			switch {
			case key == name:
				out[name] = val
			case foldsTo(key, name):
				return nil, fmt.Errorf("%w: %q is read as %q by some servers and ignored by others", ErrFoldedName, key, name)
			}
		}
	}
	if _, err := dec.Token(); err != nil { // closing brace
		return nil, fmt.Errorf("jsonrpc: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, ErrTrailingBytes
	}
	return out, nil
}

// FuzzMembersMatchesDecoder holds the single-pass Members to the
// decoder-based one it replaced.
func FuzzMembersMatchesDecoder(f *testing.F) {
	for _, s := range append(slices.Clone(parseSeeds), referenceSeeds...) {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"name":"echo","Arguments":{},"arguments":{"a":1}}`))
	f.Add([]byte(`{"name":"echo","argumentſ":{}}`))
	f.Fuzz(compareMembers)
}

func TestMembersMatchesDecoderOnSeeds(t *testing.T) {
	for _, s := range append(slices.Clone(parseSeeds), referenceSeeds...) {
		compareMembers(t, []byte(s))
	}
}

func compareMembers(t *testing.T, raw []byte) {
	names := []string{"name", "arguments", "id", "method", "params", "a"}
	got, gotErr := Members(raw, names...)
	want, wantErr := membersDecoder(raw, names...)
	class := func(err error) string {
		switch {
		case err == nil:
			return "ok"
		case errors.Is(err, ErrFoldedName):
			return "folded"
		case errors.Is(err, ErrNotAnObject):
			return "not object"
		}
		return errClass(err)
	}
	if class(gotErr) != class(wantErr) {
		t.Fatalf("%q: Members says %v (%s), the decoder %v (%s)", trim(raw), gotErr, class(gotErr), wantErr, class(wantErr))
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: Members and the decoder differ:\nMembers %q\ndecoder %q", trim(raw), got, want)
	}
}

// checkUnambiguousDecoder is the CheckUnambiguous that walked
// encoding/json's Decoder.Token: the reference
// FuzzCheckUnambiguousMatchesDecoder holds CheckUnambiguous to.
func checkUnambiguousDecoder(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	type frame struct {
		object bool
		keys   map[string]bool // folded names seen
		atKey  bool            // the next token in this object is a name
	}
	var stack []*frame
	values := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if len(stack) > 0 || values != 1 {
				return errors.New("jsonrpc: not exactly one complete JSON value")
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("jsonrpc: %w", err)
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.atKey {
			if key, ok := tok.(string); ok {
				folded := strings.ToLower(strings.ToUpper(key))
				if top.keys[folded] {
					return fmt.Errorf("%w: %q", ErrAmbiguous, key)
				}
				top.keys[folded] = true
				top.atKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, keys: map[string]bool{}, atKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// A value ended: the enclosing object expects a name next.
		if len(stack) == 0 {
			values++
		} else if stack[len(stack)-1].object {
			stack[len(stack)-1].atKey = true
		}
	}
}

// FuzzCheckUnambiguousMatchesDecoder holds the single-pass
// CheckUnambiguous to the decoder-based one it replaced.
func FuzzCheckUnambiguousMatchesDecoder(f *testing.F) {
	for _, s := range append(slices.Clone(parseSeeds), referenceSeeds...) {
		f.Add([]byte(s))
	}
	for _, s := range ambiguitySeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(compareUnambiguous)
}

var ambiguitySeeds = []string{
	`{"a":1,"A":2}`, `{"a":{"b":1,"B":2}}`, `[{"a":1},{"a":2}]`, "{\"k\":1,\"\u212a\":2}", `{"ß":1,"SS":2}`,
	"{\"\xff\":1,\"\xfe\":2}", `{"a":1}{}`, `1 2`, `[1,]`, `{"a":[1,{"x":1,"x":2}]}`, `"s"`, `{"a":1,"b":{},"c":[],"A":0}`,
}

func TestCheckUnambiguousMatchesDecoderOnSeeds(t *testing.T) {
	for _, s := range append(append(slices.Clone(parseSeeds), referenceSeeds...), ambiguitySeeds...) {
		compareUnambiguous(t, []byte(s))
	}
}

func compareUnambiguous(t *testing.T, raw []byte) {
	class := func(err error) string {
		switch {
		case err == nil:
			return "ok"
		case errors.Is(err, ErrAmbiguous):
			return "ambiguous"
		}
		return "invalid"
	}
	got, want := CheckUnambiguous(raw), checkUnambiguousDecoder(raw)
	if class(got) != class(want) {
		t.Fatalf("%q: CheckUnambiguous says %v, the decoder %v", trim(raw), got, want)
	}
}
