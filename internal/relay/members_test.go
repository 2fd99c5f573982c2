package relay

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/jsonrpc"
	"github.com/google/go-cmp/cmp"
)

func TestTopMembers(t *testing.T) {
	tests := []struct {
		raw   string
		want  []string // each member's name, "=", its bytes
		fails bool
	}{
		{raw: `{}`, want: nil},
		{raw: ` { "a" : 1 , "b":[{"}":"]"}], "\u0063":"x\"y" } `, want: []string{`a="a" : 1`, `b="b":[{"}":"]"}]`, `c="\u0063":"x\"y"`}},
		{raw: `{"a":-1.5e+3,"b":true,"c":null,"d":"\\"}`, want: []string{`a="a":-1.5e+3`, `b="b":true`, `c="c":null`, `d="d":"\\"`}},
		{raw: `[]`, fails: true},
		{raw: `{"a":1`, fails: true},
		{raw: `{"a":1}{}`, fails: true},
		{raw: `{"a" 1}`, fails: true},
		{raw: `{"a":"1}`, fails: true},
		{raw: `{"a":[1}`, fails: true},
		{raw: `{"a":}`, fails: true},
	}
	for _, tt := range tests {
		ms, err := topMembers([]byte(tt.raw), nil)
		if tt.fails {
			if err == nil {
				t.Errorf("topMembers(%s) = %v, want an error", tt.raw, ms)
			}
			continue
		}
		var got []string
		for _, m := range ms {
			got = append(got, m.name+"="+tt.raw[m.start:m.end])
		}
		if err != nil || !cmp.Equal(tt.want, got) {
			t.Errorf("topMembers(%s) = %q, %v; want %q", tt.raw, got, err, tt.want)
		}
	}
}

// membersFilter hands back, for the members object, what replace makes of
// it; everything else passes unchanged.
type membersFilter struct {
	benchFilter
	replace func(json.RawMessage) json.RawMessage
}

func (f membersFilter) ServerMessage(_ string, m ServerMessage) json.RawMessage {
	if !m.Members {
		return nil
	}
	return f.replace(m.Payload)
}

// TestFilterMembersWithholdsWhatItCannotSplice checks a filter's answer
// for the other members is spliced only when it keeps them, in order:
// otherwise the message is withheld rather than passed unchecked.
func TestFilterMembersWithholdsWhatItCannotSplice(t *testing.T) {
	raw := `{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info"},"_a":"hunter2","_b" : [1]}`
	tests := []struct {
		name    string
		replace func(json.RawMessage) json.RawMessage
		want    string // "" for withheld
	}{
		{"nothing to change", func(json.RawMessage) json.RawMessage { return nil }, raw},
		{"a changed value", func(p json.RawMessage) json.RawMessage {
			return bytes.ReplaceAll(p, []byte("hunter2"), []byte("[redacted: password]"))
		}, strings.Replace(raw, "hunter2", "[redacted: password]", 1)},
		{"a dropped member", func(json.RawMessage) json.RawMessage { return json.RawMessage(`{"_a":"x"}`) }, ""},
		{"an added member", func(p json.RawMessage) json.RawMessage { return json.RawMessage(`{"_a":"x","_b":[1],"_c":2}`) }, ""},
		{"a routing name", func(json.RawMessage) json.RawMessage { return json.RawMessage(`{"id":"x","_b":[1]}`) }, ""},
		{"a payload name", func(json.RawMessage) json.RawMessage { return json.RawMessage(`{"params":{},"_b":[1]}`) }, ""},
		{"not an object", func(json.RawMessage) json.RawMessage { return json.RawMessage(`null`) }, ""},
		{"not JSON", func(json.RawMessage) json.RawMessage { return json.RawMessage(`{"_a":`) }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := benchSession(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Filter: membersFilter{replace: tt.replace}})
			m, err := jsonrpc.Parse([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			out, ok := s.messageForHost(m, nil, nil)
			if tt.want == "" {
				if ok {
					t.Fatalf("passed %s, want it withheld", out)
				}
				return
			}
			if !ok || string(out) != tt.want {
				t.Fatalf("got %s (%v), want %s", out, ok, tt.want)
			}
		})
	}
}

// FuzzTopMembers checks the member reader against encoding/json: on a
// valid object it finds the same names in order, each span holding one
// member, and concatenating the spans rebuilds an equal object; on
// anything else it fails without panicking.
func FuzzTopMembers(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"result":{"a":[1,"]"]},"_debug":{"x":"\"}"}}`,
		` { "\u0069d" : "x" , "b":[] } `, `{}`, `{"a":{"b":{"c":[[]]}}}`, `[1]`, `"x"`, `{"a":1,}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ms, err := topMembers(raw, nil)
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil || bytes.HasPrefix(bytes.TrimLeft(raw, " \t\r\n"), []byte("null")) {
			if err == nil && json.Valid(raw) {
				t.Fatalf("topMembers(%q) read members of a non-object", raw)
			}
			return
		}
		if err != nil {
			t.Fatalf("topMembers(%q) failed on a valid object: %v", raw, err)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.Token()
		var names []string
		for dec.More() {
			tok, _ := dec.Token()
			names = append(names, tok.(string))
			var v json.RawMessage
			dec.Decode(&v)
		}
		var got []string
		rebuilt := []byte{'{'}
		for i, m := range ms {
			got = append(got, m.name)
			if i > 0 {
				rebuilt = append(rebuilt, ',')
			}
			rebuilt = append(rebuilt, raw[m.start:m.end]...)
			var one map[string]json.RawMessage
			if err := json.Unmarshal(append(append([]byte{'{'}, raw[m.start:m.end]...), '}'), &one); err != nil || len(one) != 1 {
				t.Fatalf("member %q spans %q, not one member", m.name, raw[m.start:m.end])
			}
		}
		rebuilt = append(rebuilt, '}')
		if !cmp.Equal(names, got) {
			t.Fatalf("names %q, encoding/json reads %q", got, names)
		}
		var again map[string]json.RawMessage
		if err := json.Unmarshal(rebuilt, &again); err != nil || len(again) != len(obj) {
			t.Fatalf("rebuilt %q from %q: %v", rebuilt, raw, err)
		}
	})
}
