package relay

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/jsonrpc"
	"github.com/mark3labs/mcp-go/mcp"
)

func headerSession() *session {
	return benchSession(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

func TestParamHeaders(t *testing.T) {
	s := headerSession()
	s.learnParamHeaders(json.RawMessage(`{"tools":[
		{"name":"sql","inputSchema":{"type":"object","properties":{
			"region":{"type":"string","x-mcp-header":"Region"},
			"opts":{"type":"object","properties":{"dry":{"type":"boolean","x-mcp-header":"Dry"},"n":{"type":["integer"],"x-mcp-header":"N"}}},
			"query":{"type":"string"}}}},
		{"name":"bad_type","inputSchema":{"properties":{"f":{"type":"number","x-mcp-header":"F"}}}},
		{"name":"bad_token","inputSchema":{"properties":{"f":{"type":"string","x-mcp-header":"A B"}}}},
		{"name":"twice","inputSchema":{"properties":{"a":{"type":"string","x-mcp-header":"X"},"b":{"type":"string","x-mcp-header":"x"}}}}
	]}`))
	call := func(name, args string) http.Header {
		m, err := jsonrpc.Parse([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + name + `","arguments":` + args + `}}`))
		if err != nil {
			t.Fatal(err)
		}
		return s.upstreamHeaders(http.Header{"Mcp-Protocol-Version": {"2026-07-28"}}, m)
	}
	tests := []struct {
		name, tool, args string
		want             map[string]string
	}{
		{"every annotated value", "sql", `{"region":"eu","opts":{"dry":true,"n":42.0},"query":"q"}`,
			map[string]string{"Mcp-Param-Region": "eu", "Mcp-Param-Dry": "true", "Mcp-Param-N": "42"}},
		{"absent and null values are left out", "sql", `{"region":null,"opts":{}}`, map[string]string{}},
		{"a name only a loose reader matches is no value", "sql", `{"Region":"eu"}`, map[string]string{}},
		{"a fraction is no integer", "sql", `{"opts":{"n":1.5}}`, map[string]string{}},
		{"non-ASCII is base64", "sql", `{"region":"世界"}`, map[string]string{"Mcp-Param-Region": "=?base64?5LiW55WM?="}},
		{"a number type is not allowed", "bad_type", `{"f":1}`, map[string]string{}},
		{"a header name must be a token", "bad_token", `{"f":"x"}`, map[string]string{}},
		{"header names are unique regardless of case", "twice", `{"a":"1","b":"2"}`, map[string]string{}},
		{"an unknown tool has none", "other", `{"region":"eu"}`, map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := call(tt.tool, tt.args)
			got := map[string]string{}
			for k := range h {
				if strings.HasPrefix(k, "Mcp-Param-") {
					got[k] = h.Get(k)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("headers %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

// FuzzParamHeaders: whatever tools/list a server sends and whatever
// arguments a call has, each Mcp-Param-* header the relay sets carries the
// value an exact reader finds at the annotated path, and Mcp-Name the
// call's exact name.
func FuzzParamHeaders(f *testing.F) {
	f.Add([]byte(`{"tools":[{"name":"t","inputSchema":{"properties":{"a":{"type":"string","x-mcp-header":"A"},"o":{"properties":{"b":{"type":"integer","x-mcp-header":"B"}}}}}}]}`),
		[]byte(`{"a":"x","o":{"b":7}}`))
	f.Add([]byte(`{"tools":[{"name":"t","inputSchema":{"properties":{"a":{"type":["string","boolean"],"x-mcp-header":"A"}}}}]}`), []byte(`{"a":true}`))
	f.Fuzz(func(t *testing.T, list, args []byte) {
		s := headerSession()
		s.learnParamHeaders(list)
		if !json.Valid(args) {
			return
		}
		m, err := jsonrpc.Parse([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":` + string(args) + `}}`))
		if err != nil {
			return
		}
		h := s.upstreamHeaders(http.Header{"Mcp-Protocol-Version": {"2026-07-28"}}, m)
		if h.Get("Mcp-Name") != "t" || h.Get("Mcp-Method") != "tools/call" {
			t.Fatalf("Mcp-Name %q, Mcp-Method %q", h.Get("Mcp-Name"), h.Get("Mcp-Method"))
		}
		s.mu.Lock()
		bindings := s.paramHeaders["t"]
		s.mu.Unlock()
		for k := range h {
			name, ok := strings.CutPrefix(k, "Mcp-Param-")
			if !ok {
				continue
			}
			var b *paramHeader
			for i := range bindings {
				if http.CanonicalHeaderKey("Mcp-Param-"+bindings[i].header) == k {
					b = &bindings[i]
				}
			}
			if b == nil {
				t.Fatalf("header %s was declared by no annotation", name)
			}
			v, ok := argumentAt(args, b.path)
			if !ok {
				t.Fatalf("header %s set with no value at %v", k, b.path)
			}
			want, _ := mcp.EncodeHeaderValue(v)
			if h.Get(k) != want || len(h.Values(k)) != 1 {
				t.Fatalf("header %s = %q, want %q", k, h.Values(k), want)
			}
		}
	})
}
