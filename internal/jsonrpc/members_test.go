package jsonrpc

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestMembers(t *testing.T) {
	tests := []struct {
		name, in string
		want     map[string]string
		err      error
	}{
		{name: "reads exact names", in: `{"name":"get_me","arguments":{"a":1},"other":true}`,
			want: map[string]string{"name": `"get_me"`, "arguments": `{"a":1}`}},
		{name: "absent members are absent", in: `{"name":"x"}`, want: map[string]string{"name": `"x"`}},
		{name: "an escaped exact name is the name", in: `{"n\u0061me":"x"}`, want: map[string]string{"name": `"x"`}},
		{name: "names deeper down are not read", in: `{"name":"x","arguments":{"Name":"y","ARGUMENTS":1}}`,
			want: map[string]string{"name": `"x"`, "arguments": `{"Name":"y","ARGUMENTS":1}`}},
		{name: "capitalised", in: `{"name":"get_me","Arguments":{"owner":"DEFRA"}}`, err: ErrFoldedName},
		{name: "upper case", in: `{"name":"get_me","ARGUMENTS":{}}`, err: ErrFoldedName},
		{name: "long s", in: `{"name":"get_me","argumentſ":{}}`, err: ErrFoldedName},
		{name: "long s escaped", in: `{"name":"get_me","argument\u017f":{}}`, err: ErrFoldedName},
		{name: "Kelvin sign", in: `{"\u212aey":1}`, err: ErrFoldedName},
		{name: "variant beside the name", in: `{"name":"a","NAME":"b"}`, err: ErrFoldedName},
		{name: "duplicate", in: `{"name":"a","name":"b"}`, err: ErrDuplicateKey},
		{name: "duplicate of a name not read", in: `{"x":1,"x":2}`, err: ErrDuplicateKey},
		{name: "array", in: `[{"name":"a"}]`, err: ErrNotAnObject},
		{name: "null", in: `null`, err: ErrNotAnObject},
		{name: "trailing data", in: `{"name":"a"}{}`, err: ErrTrailingBytes},
		{name: "truncated", in: `{"name":"a",`, err: errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			names := []string{"name", "arguments"}
			if tt.name == "Kelvin sign" {
				names = []string{"key"}
			}
			got, err := Members([]byte(tt.in), names...)
			if tt.err != nil {
				if err == nil || (tt.err != errAny && !errors.Is(err, tt.err)) {
					t.Fatalf("Members(%s) = %v, %v; want %v", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Members(%s): %v", tt.in, err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("Members(%s) = %s, want %v", tt.in, got, tt.want)
			}
			for k, v := range tt.want {
				if string(got[k]) != v {
					t.Errorf("member %s = %s, want %s", k, got[k], v)
				}
			}
		})
	}
}

// FuzzMembers checks that whatever Members accepts, a reader matching
// names loosely (a Go struct, as Go servers decode params) and a reader
// matching them exactly (a map, as the TypeScript and Python SDKs read
// objects) see the same members Members returns, byte for byte.
func FuzzMembers(f *testing.F) {
	for _, s := range []string{
		`{"name":"get_me","arguments":{"owner":"DEFRA"},"_meta":{"progressToken":1}}`,
		`{"name":"get_me","Arguments":{"owner":"DEFRA"}}`,
		`{"name":"get_me","argumentſ":{}}`,
		`{"n\u0061me":"x","\u212a":1}`,
		`{"name":"a","name":"b"}`,
		`{}`, `null`, `[]`, `{"_META":{}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := Members(b, "name", "arguments", "_meta")
		if err != nil {
			return
		}
		var loose struct {
			Name      json.RawMessage `json:"name"`
			Arguments json.RawMessage `json:"arguments"`
			Meta      json.RawMessage `json:"_meta"`
		}
		if err := json.Unmarshal(b, &loose); err != nil {
			t.Fatalf("Members accepted %q, encoding/json refused it: %v", b, err)
		}
		var exact map[string]json.RawMessage
		if err := json.Unmarshal(b, &exact); err != nil {
			t.Fatalf("Members accepted %q, a map refused it: %v", b, err)
		}
		for name, l := range map[string]json.RawMessage{"name": loose.Name, "arguments": loose.Arguments, "_meta": loose.Meta} {
			if string(got[name]) != string(l) {
				t.Fatalf("%q: Members read %s as %s, a Go struct as %s", b, name, got[name], l)
			}
			if string(got[name]) != string(exact[name]) {
				t.Fatalf("%q: Members read %s as %s, an exact reader as %s", b, name, got[name], exact[name])
			}
		}
	})
}
