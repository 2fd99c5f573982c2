package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/jsonrpc"
	"github.com/countersign/countersign/internal/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// answeringConn is an upstream that records every message it receives and
// answers each request at once.
type answeringConn struct {
	mu   sync.Mutex
	got  [][]byte
	hdrs []http.Header
	in   chan transport.Incoming
	done chan struct{}
	once sync.Once
}

func newAnsweringConn() *answeringConn {
	return &answeringConn{in: make(chan transport.Incoming, 256), done: make(chan struct{})}
}

func (c *answeringConn) Send(_ context.Context, msg []byte, h http.Header) error {
	c.mu.Lock()
	c.got = append(c.got, append([]byte(nil), msg...))
	c.hdrs = append(c.hdrs, h.Clone())
	c.mu.Unlock()
	m, err := jsonrpc.Parse(msg)
	if err != nil || m.Kind != jsonrpc.KindRequest {
		return nil
	}
	result := `{}`
	switch m.Method {
	case "initialize":
		result = `{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"u","version":"1"}}`
	case "tools/list":
		result = `{"tools":[{"name":"execute_sql","inputSchema":{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"}}}}]}`
	case "tools/call":
		result = `{"content":[]}`
	}
	select {
	case c.in <- transport.Incoming{Raw: []byte(`{"jsonrpc":"2.0","id":` + string(m.ID) + `,"result":` + result + `}`)}:
	default:
	}
	return nil
}

func (c *answeringConn) Incoming() <-chan transport.Incoming { return c.in }
func (c *answeringConn) Done() <-chan struct{}               { return c.done }
func (c *answeringConn) Err() error                          { return transport.ErrClosed }
func (c *answeringConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return nil
}

// recordingGate decides by the tool's name (deny_*: denied, edit_*:
// approved with other arguments, anything else approved as sent) and
// records what every approval lets run.
type recordingGate struct {
	mu       sync.Mutex
	approved []approval
}

// approval is one call the gate let run: its name and the arguments the
// server must get, byte for byte.
type approval struct {
	name string
	args string
}

// editedArguments is what the gate's person puts in place of edit_*
// calls' arguments (compact, as the relay re-encodes params).
const editedArguments = `{"edited":true}`

func (g *recordingGate) Submit(_ context.Context, c gate.Call) gate.Verdict {
	v := gate.Verdict{CallID: "call", Outcome: gate.OutcomeApproved}
	args := string(c.Arguments)
	switch {
	case strings.HasPrefix(c.Tool, "deny_"):
		v.Outcome = gate.OutcomeDenied
	case strings.HasPrefix(c.Tool, "edit_"):
		v.Arguments = json.RawMessage(editedArguments)
		args = editedArguments
	}
	if v.Approved() {
		g.mu.Lock()
		g.approved = append(g.approved, approval{c.Tool, args})
		g.mu.Unlock()
	}
	return v
}

// take removes an approval for name and args, reporting whether there
// was one.
func (g *recordingGate) take(name, args string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, a := range g.approved {
		if a.name == name && a.args == args {
			g.approved = append(g.approved[:i], g.approved[i+1:]...)
			return true
		}
	}
	return false
}

// toolCallSeen is a tools/call as one reader of the upstream's bytes sees
// it.
type toolCallSeen struct {
	isCall bool
	name   string
	args   string
}

// readCallExactly reads a message as the TypeScript and Python SDKs do: exact
// member names, the last of a repeated name.
func readCallExactly(msg []byte) toolCallSeen {
	var top map[string]json.RawMessage
	if json.Unmarshal(msg, &top) != nil {
		return toolCallSeen{}
	}
	var method string
	if json.Unmarshal(top["method"], &method) != nil || method != "tools/call" {
		return toolCallSeen{}
	}
	var params map[string]json.RawMessage
	json.Unmarshal(top["params"], &params)
	var name string
	json.Unmarshal(params["name"], &name)
	return toolCallSeen{isCall: true, name: name, args: string(params["arguments"])}
}

// readLoosely reads a message as a Go server built on encoding/json does:
// member names matched without regard to case.
func readLoosely(msg []byte) toolCallSeen {
	var m struct {
		Method string
		Params struct {
			Name      string
			Arguments json.RawMessage
		}
	}
	if json.Unmarshal(msg, &m) != nil || m.Method != "tools/call" {
		// A partial decode still sets what it reached: look again at the
		// method alone.
		var only struct{ Method string }
		if json.Unmarshal(msg, &only) != nil || only.Method != "tools/call" {
			return toolCallSeen{}
		}
		return toolCallSeen{isCall: true, name: "\x00unreadable"}
	}
	return toolCallSeen{isCall: true, name: m.Params.Name, args: string(m.Params.Arguments)}
}

// routeOnce posts body to a fresh relay in front of answering upstreams
// and returns every message the upstreams received, with its headers.
// hostName, when set, is the Mcp-Name header the AI app claims.
func routeOnce(t *testing.T, g *recordingGate, body []byte, sessionless bool, hostName string) ([][]byte, []http.Header) {
	var mu sync.Mutex
	var conns []*answeringConn
	srv := Server{ID: "s", Name: "S", Dial: func(context.Context) (transport.Conn, error) {
		c := newAnsweringConn()
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		return c, nil
	}}
	r, err := New(Options{Servers: []Server{srv}, Gate: g, Filter: benchFilter{}, Token: testToken, Port: 1,
		KeepAlive: time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	post := func(b []byte, sid string, extra http.Header) string {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "http://127.0.0.1:1/servers/s/mcp", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if sid != "" {
			req.Header.Set("Mcp-Session-Id", sid)
		}
		for k, v := range extra {
			req.Header[k] = v
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		return w.Header().Get("Mcp-Session-Id")
	}
	sid := ""
	if !sessionless {
		sid = post([]byte(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}`), "", nil)
	}
	var claimed http.Header
	if hostName != "" {
		claimed = http.Header{"Mcp-Name": {hostName}, "Mcp-Method": {"tools/call"}, "Mcp-Param-Owner": {hostName}}
	}
	post(body, sid, claimed)
	r.Close()
	mu.Lock()
	defer mu.Unlock()
	var all [][]byte
	var hdrs []http.Header
	for _, c := range conns {
		c.mu.Lock()
		all = append(all, c.got...)
		hdrs = append(hdrs, c.hdrs...)
		c.mu.Unlock()
	}
	return all, hdrs
}

// FuzzRouting: no POST body — one message or a batch, with or without an
// id, any method and params, in a session or not, with any Mcp-Name the AI
// app claims — makes a tools/call reach the server without the gate's
// approval, or with a name or arguments other than those the gate was
// shown (or the person's edit), as read by an exact reader, by a loose
// one, or from its Mcp-Name and Mcp-Param-* headers.
func FuzzRouting(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_me","arguments":{"a":1}}}`,
		`{"jsonrpc":"2.0","method":"tools/call","params":{"name":"delete_repository","arguments":{"owner":"evil-org","repo":"secret"}}}`,
		`[{"jsonrpc":"2.0","method":"tools/call","params":{"name":"x","arguments":{}}},{"jsonrpc":"2.0","id":2,"method":"ping"}]`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_me","Arguments":{"owner":"DEFRA"}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_me","argumentſ":{"owner":"DEFRA"}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"NAME":"delete_repository","name":"get_me","arguments":{}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"deny_all","arguments":{}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"edit_me","arguments":{"region":"us"},"_meta":{"progressToken":1}}}`,
		`{"jsonrpc":"2.0","id":"r","result":{"content":[]}}`,
		`{"jsonrpc":"2.0","id":1e999999999,"result":{}}`,
		`{"jsonrpc":"2.0","method":"resources/read","params":{"uri":"repo://x/y"}}`,
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_me","arguments":{},` + modern + `}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"execute_sql","arguments":{"region":"eu"}}}]`,
	} {
		f.Add([]byte(s), false, "")
		f.Add([]byte(s), true, "delete_repository")
	}
	f.Fuzz(func(t *testing.T, body []byte, sessionless bool, hostName string) {
		g := &recordingGate{}
		msgs, hdrs := routeOnce(t, g, body, sessionless, hostName)
		for i, msg := range msgs {
			exact, loose := readCallExactly(msg), readLoosely(msg)
			if !exact.isCall && !loose.isCall {
				continue
			}
			if m, err := jsonrpc.Parse(msg); err != nil || m.Kind != jsonrpc.KindRequest {
				t.Fatalf("a tools/call that is not a request reached the server: %s", msg)
			}
			if exact != loose {
				t.Fatalf("the server got a call readers see differently (exact %+v, loose %+v): %s", exact, loose, msg)
			}
			if !g.take(exact.name, exact.args) {
				t.Fatalf("a tools/call reached the server without an approval of exactly its name and arguments: %s", msg)
			}
			// Headers an intermediary may act on say the same.
			if v := hdrs[i].Values("Mcp-Name"); len(v) > 0 {
				if name, ok := mcp.DecodeHeaderValue(v[0]); !ok || len(v) != 1 || name != exact.name {
					t.Fatalf("Mcp-Name %q for a call of %q: %s", v, exact.name, msg)
				}
			}
			if v := hdrs[i].Values("Mcp-Method"); len(v) > 0 && (len(v) != 1 || v[0] != "tools/call") {
				t.Fatalf("Mcp-Method %q for a tools/call", v)
			}
			for k := range hdrs[i] {
				if strings.HasPrefix(k, "Mcp-Param-") && k != "Mcp-Param-Region" {
					t.Fatalf("header %s reached the server, which declared only Region", k)
				}
			}
		}
	})
}
