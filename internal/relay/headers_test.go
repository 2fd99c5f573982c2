package relay

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/countersign/countersign/internal/gate"
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

// TestHostHeadersAreChecked: a 2026-07-28 request whose Mcp-Method or
// Mcp-Name is missing, repeated or disagrees with its body gets HTTP 400
// with -32020, as a 2026-07-28 server answers it, and reaches neither the
// person nor the server. Headers that agree, written as HTTP allows
// (other case of the name, whitespace around the value, Base64), pass.
func TestHostHeadersAreChecked(t *testing.T) {
	var calls atomic.Int64
	e := newEnv(t, []Server{streamableServer(t, "echo", echoServer(&calls))})
	asked := atomic.Int64{}
	e.setDecider(func(gate.Call) *gate.Decision { asked.Add(1); return &gate.Decision{Approve: true} })
	call := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"},` + modern + `}}`
	list := `{"jsonrpc":"2.0","id":8,"method":"tools/list","params":{` + modern + `}}`
	read := `{"jsonrpc":"2.0","id":9,"method":"resources/read","params":{"uri":"x:y",` + modern + `}}`
	post := func(body string, h ...string) (int, []byte) {
		req, _ := http.NewRequest(http.MethodPost, e.url("echo"), strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		for i := 0; i+1 < len(h); i += 2 {
			req.Header[h[i]] = append(req.Header[h[i]], h[i+1]) // as written: no canonical form
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	refused := []struct {
		name, body string
		h          []string
	}{
		{"Mcp-Method names another method", list, []string{"Mcp-Method", "prompts/list"}},
		{"Mcp-Method missing", list, nil},
		{"Mcp-Method in another case", list, []string{"Mcp-Method", "TOOLS/LIST"}},
		{"Mcp-Method twice", list, []string{"Mcp-Method", "tools/list", "Mcp-Method", "tools/list"}},
		{"Mcp-Method of a call missing", call, []string{"Mcp-Name", "echo"}},
		{"Mcp-Name names another tool", call, []string{"Mcp-Method", "tools/call", "Mcp-Name", "delete_repository"}},
		{"Mcp-Name missing", call, []string{"Mcp-Method", "tools/call"}},
		{"Mcp-Name in another case", call, []string{"Mcp-Method", "tools/call", "Mcp-Name", "ECHO"}},
		{"Mcp-Name with bad Base64", call, []string{"Mcp-Method", "tools/call", "Mcp-Name", "=?base64?ZWNo?="}},
		{"Mcp-Name twice", call, []string{"Mcp-Method", "tools/call", "Mcp-Name", "echo", "Mcp-Name", "echo"}},
		{"Mcp-Name names another resource", read, []string{"Mcp-Method", "resources/read", "Mcp-Name", "x:z"}},
		{"version in the header, not _meta", `{"jsonrpc":"2.0","id":8,"method":"tools/list"}`, []string{"Mcp-Protocol-Version", "2026-07-28", "Mcp-Method", "prompts/list"}},
	}
	for _, tt := range refused {
		status, body := post(tt.body, tt.h...)
		if status != http.StatusBadRequest || !strings.Contains(string(body), `"code":-32020`) {
			t.Errorf("%s: HTTP %d %s, want 400 with -32020", tt.name, status, body)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("the server ran %d refused calls", n)
	}
	if n := asked.Load(); n != 0 {
		t.Errorf("the person was asked %d times about refused calls", n)
	}

	accepted := []struct {
		name, body string
		h          []string
	}{
		{"lowercase header names", list, []string{"mcp-method", "tools/list"}},
		{"uppercase header names", list, []string{"MCP-METHOD", "tools/list"}},
		{"whitespace around the value", call, []string{"Mcp-Method", "tools/call", "Mcp-Name", "  echo\t"}},
		{"a Base64 name", call, []string{"Mcp-Method", "tools/call", "Mcp-Name", "=?base64?ZWNobw==?="}},
		{"an older revision is not checked", `{"jsonrpc":"2.0","id":8,"method":"tools/list"}`, []string{"Mcp-Protocol-Version", "2025-06-18", "Mcp-Method", "prompts/list"}},
	}
	for _, tt := range accepted {
		status, body := post(tt.body, tt.h...)
		if status != http.StatusOK || strings.Contains(string(body), `-32020`) ||
			strings.Contains(tt.body, "2026-07-28") && strings.Contains(string(body), `"error"`) {
			t.Errorf("%s: HTTP %d %s, want an answer", tt.name, status, body)
		}
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("the server ran %d calls, want the 2 accepted", n)
	}
}

// TestParamHeadersAreChecked: for a tool the server annotated, each
// Mcp-Param-* header the AI app sends must carry the argument's value as
// the 2026-07-28 transport encodes it; a missing, repeated, badly encoded
// or different one, or one for an argument the call lacks, is a mismatch.
func TestParamHeadersAreChecked(t *testing.T) {
	s := headerSession()
	s.learnParamHeaders(json.RawMessage(`{"tools":[
		{"name":"sql","inputSchema":{"type":"object","properties":{
			"region":{"type":"string","x-mcp-header":"Region"},
			"opts":{"type":"object","properties":{"dry":{"type":"boolean","x-mcp-header":"Dry"},"n":{"type":"integer","x-mcp-header":"N"}}}}}}
	]}`))
	check := func(args string, h ...string) error {
		m, err := jsonrpc.Parse([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"sql","arguments":` + args + `}}`))
		if err != nil {
			t.Fatal(err)
		}
		hdr := http.Header{"Mcp-Protocol-Version": {"2026-07-28"}}
		for i := 0; i+1 < len(h); i += 2 {
			hdr.Add(h[i], h[i+1])
		}
		return s.checkParamHeaders(hdr, m)
	}
	tests := []struct {
		name, args string
		h          []string
		ok         bool
	}{
		{"every value", `{"region":"eu","opts":{"dry":true,"n":42}}`, []string{"Mcp-Param-Region", "eu", "Mcp-Param-Dry", "true", "Mcp-Param-N", "42"}, true},
		{"numbers by value, Base64 decoded", `{"region":"世界","opts":{"n":42}}`, []string{"Mcp-Param-Region", "=?base64?5LiW55WM?=", "mcp-param-n", "42.0"}, true},
		{"absent arguments need none", `{}`, nil, true},
		{"an empty header for a null argument", `{"region":null}`, []string{"Mcp-Param-Region", ""}, true},
		{"missing", `{"region":"eu"}`, nil, false},
		{"another value", `{"region":"eu"}`, []string{"Mcp-Param-Region", "us"}, false},
		{"another case", `{"region":"eu"}`, []string{"Mcp-Param-Region", "EU"}, false},
		{"bad Base64", `{"region":"eu"}`, []string{"Mcp-Param-Region", "=?base64?SGVsbG8?="}, false},
		{"twice", `{"region":"eu"}`, []string{"Mcp-Param-Region", "eu", "Mcp-Param-Region", "eu"}, false},
		{"for an argument the call lacks", `{}`, []string{"Mcp-Param-Region", "eu"}, false},
		{"a boolean as another word", `{"opts":{"dry":true}}`, []string{"Mcp-Param-Dry", "1"}, false},
		{"another number", `{"opts":{"n":42}}`, []string{"Mcp-Param-N", "43"}, false},
		{"a name only a loose reader matches", `{"Region":"eu"}`, []string{"Mcp-Param-Region", "eu"}, false},
	}
	for _, tt := range tests {
		err := check(tt.args, tt.h...)
		if tt.ok && err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
		if !tt.ok && !mcp.IsHeaderMismatch(err) {
			t.Errorf("%s: got %v, want a header mismatch", tt.name, err)
		}
	}
}

// FuzzHostHeaders: whatever message and headers an AI app sends, a
// 2026-07-28 request that checkHostHeaders lets through has one Mcp-Method
// equal to its method and, where the method names something, one Mcp-Name
// that decodes to exactly that name.
func FuzzHostHeaders(f *testing.F) {
	f.Add(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`, "tools/call", "echo", "")
	f.Add(`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"x:y"}}`, "resources/read", "=?base64?eDp5?=", "2026-07-28")
	f.Add(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, " tools/list ", "", "2026-07-28")
	f.Fuzz(func(t *testing.T, body, method, name, version string) {
		m, err := jsonrpc.Parse([]byte(body))
		if err != nil {
			return
		}
		h := http.Header{}
		if version != "" {
			h.Set(mcp.HeaderProtocolVersion, version)
		}
		h.Set(mcp.HeaderMethod, method)
		if name != "" {
			h.Set(mcp.HeaderName, name)
		}
		if checkHostHeaders(h, m) != nil || m.Kind != jsonrpc.KindRequest || !mcp.IsModernProtocol(protocolVersion(h, m)) {
			return
		}
		if trimOWS(method) != m.Method {
			t.Fatalf("Mcp-Method %q let through for %q", method, m.Method)
		}
		if member := nameMember(m.Method); member != "" {
			body, ok := memberString(m.Params, member)
			got, _ := mcp.DecodeHeaderValue(trimOWS(name))
			if !ok || got != body {
				t.Fatalf("Mcp-Name %q let through for %q", name, body)
			}
		}
	})
}
