package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"testing"

	"github.com/countersign/countersign/internal/jsonrpc"
)

func TestReplaceMember(t *testing.T) {
	tests := []struct {
		name, raw, key, val, want string
		fails                     bool
	}{
		{name: "keeps every other byte", raw: `{ "id" : 1 , "error" : {"code":1} , "x":[1e400] }`, key: "error", val: `{"code":2}`,
			want: `{ "id" : 1 , "error" : {"code":2} , "x":[1e400] }`},
		{name: "finds an escaped name", raw: `{"\u0065rror":"a","id":1}`, key: "error", val: `"b"`, want: `{"\u0065rror":"b","id":1}`},
		{name: "skips the name nested deeper", raw: `{"result":{"error":1},"error":2}`, key: "error", val: `3`, want: `{"result":{"error":1},"error":3}`},
		{name: "refuses a value that is not JSON", raw: `{"error":1}`, key: "error", val: `{"a":`, fails: true},
		{name: "refuses a missing member", raw: `{"id":1}`, key: "error", val: `1`, fails: true},
		{name: "refuses a repeated member", raw: `{"error":1,"error":2}`, key: "error", val: `3`, fails: true},
		{name: "refuses an array", raw: `[{"error":1}]`, key: "error", val: `3`, fails: true},
		{name: "refuses trailing data", raw: `{"error":1}{}`, key: "error", val: `3`, fails: true},
		{name: "refuses a truncated object", raw: `{"error":1,`, key: "error", val: `3`, fails: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := replaceMember([]byte(tt.raw), tt.key, []byte(tt.val))
			if tt.fails {
				if err == nil {
					t.Fatalf("replaceMember(%s) = %s, want an error", tt.raw, got)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("replaceMember(%s) = %s, %v; want %s", tt.raw, got, err, tt.want)
			}
		})
	}
}

func TestSameRouting(t *testing.T) {
	tests := []struct {
		name, before, after string
		same                bool
	}{
		{"text changed", `{"progressToken":"pt","message":"a ghp_x"}`, `{"progressToken":"pt","message":"a [redacted]"}`, true},
		{"progress token changed", `{"progressToken":"ghp_x"}`, `{"progressToken":"[redacted]"}`, false},
		{"number token kept as spelled", `{"progressToken":1.0}`, `{"progressToken":1}`, false},
		{"request id changed", `{"requestId":"a","reason":"x"}`, `{"requestId":"b","reason":"x"}`, false},
		{"meta progress token changed", `{"_meta":{"progressToken":"a"}}`, `{"_meta":{"progressToken":"b"}}`, false},
		{"token removed", `{"progressToken":"a"}`, `{}`, false},
		{"not an object either side", `[1]`, `[2]`, true},
		{"not JSON after", `{"progressToken":"a"}`, `{`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sameRouting(json.RawMessage(tt.before), json.RawMessage(tt.after)); got != tt.same {
				t.Errorf("sameRouting(%s, %s) = %v, want %v", tt.before, tt.after, got, tt.same)
			}
		})
	}
}

// FuzzReplaceMember checks a splice either fails or yields one JSON
// object whose member holds exactly the new value, and that splicing the
// old value back restores the input byte for byte.
func FuzzReplaceMember(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"x"}}`,
		`{"error":"\"}","id":"\u0022"}`,
		`{ "a":[{"error":1}], "error" : null }`,
		`{"error":1,"error":2}`,
		`[]`, `{`, `"error"`,
	} {
		f.Add([]byte(s), []byte(`{"code":1}`))
	}
	f.Fuzz(func(t *testing.T, raw, val []byte) {
		val = bytes.Trim(val, " \t\r\n")
		out, err := replaceMember(raw, "error", val)
		if err != nil {
			return
		}
		var before, after map[string]json.RawMessage
		if err := json.Unmarshal(raw, &before); err != nil {
			t.Fatalf("spliced %q, which is not one object: %v", raw, err)
		}
		if err := json.Unmarshal(out, &after); err != nil {
			t.Fatalf("replaceMember(%q, %q) = %q: not one object: %v", raw, val, out, err)
		}
		if !bytes.Equal(after["error"], val) {
			t.Fatalf("member holds %q, want %q", after["error"], val)
		}
		// Splicing the old value back gives the input, byte for byte.
		back, err := replaceMember(out, "error", before["error"])
		if err != nil || !bytes.Equal(back, raw) {
			t.Fatalf("round trip %q → %q → %q (%v)", raw, out, back, err)
		}
	})
}

// FuzzFilterMessage checks that redacting a server request or notification
// never breaks its framing: what reaches the host parses as the same kind
// of message with the same id, method and progress token, and a message
// with nothing to redact passes byte for byte.
func FuzzFilterMessage(f *testing.F) {
	for _, bm := range benchMessages {
		f.Add([]byte(bm.raw))
	}
	for _, s := range []string{
		`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"password=hunter22","message":"password=hunter22"}}`,
		`{"jsonrpc":"2.0","id":"r","method":"elicitation/create","params":{"message":"api_key: 9f8e7d6c5b4a39281706f5e4d3c2b1a0","_meta":{"progressToken":1}}}`,
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"token=abcdef0123456789abcdef","reason":"x"}}`,
		`{"jsonrpc":"2.0","method":"notifications/message","params":[1,"password=hunter22"]}`,
		`{"jsonrpc":"2.0","method":"notifications/message","_debug":{"auth":"password=hunter22"}, "password=hunter22" : 1}`,
		`{"jsonrpc":"2.0","id":"r","method":"ping","params":{},"_trace":"api_key: 9f8e7d6c5b4a39281706f5e4d3c2b1a0"}`,
	} {
		f.Add([]byte(s))
	}
	s := benchSession(Options{Logger: slog.New(slog.DiscardHandler), Filter: benchFilter{}})
	s.conn = discardConn{newPipeConn()}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := jsonrpc.Parse(raw)
		if err != nil || m.Kind == jsonrpc.KindResponse {
			return
		}
		out, ok := s.messageForHost(m, nil, progressToken(m))
		if !ok {
			return
		}
		if redactPayload(m.Params) == nil && redactPayload(otherMembers(t, raw)) == nil {
			if !bytes.Equal(out, raw) {
				t.Fatalf("clean message changed: %q → %q", raw, out)
			}
			return
		}
		got, err := jsonrpc.Parse(out)
		if err != nil {
			t.Fatalf("filtered %q into %q, which does not parse: %v", raw, out, err)
		}
		if got.Kind != m.Kind || !bytes.Equal(got.ID, m.ID) || got.Method != m.Method || !bytes.Equal(progressToken(got), progressToken(m)) {
			t.Fatalf("framing changed: %q → %q", raw, out)
		}
		if left := redactPayload(otherMembers(t, out)); left != nil {
			t.Fatalf("filtered %q into %q, whose other members still hold secrets", raw, out)
		}
	})
}

// otherMembers returns an object of a message's top-level members beside
// its routing (jsonrpc, id, method) and its payload (params, or result and
// error).
func otherMembers(t *testing.T, raw []byte) json.RawMessage {
	ms, err := topMembers(raw, nil)
	if err != nil {
		t.Fatalf("members of %q: %v", raw, err)
	}
	m, err := jsonrpc.Parse(raw)
	if err != nil {
		t.Fatalf("parsing %q: %v", raw, err)
	}
	obj := []byte{'{'}
	for _, mb := range ms {
		if !seenElsewhere(m.Kind, mb.name) {
			if len(obj) > 1 {
				obj = append(obj, ',')
			}
			obj = append(obj, raw[mb.start:mb.end]...)
		}
	}
	return append(obj, '}')
}

// discardConn is an upstream that drops what the relay sends it.
type discardConn struct{ *pipeConn }

func (discardConn) Send(context.Context, []byte, http.Header) error { return nil }
