package relay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/transport"
	"github.com/mark3labs/mcp-go/client"
	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// echoServer is a real mcp-go server with an echo tool; calls counts how
// often the tool actually ran.
func echoServer(calls *atomic.Int64) *server.MCPServer {
	s := server.NewMCPServer("echo-upstream", "1.0.0", server.WithToolCapabilities(true))
	s.AddTool(mcp.NewTool("echo", mcp.WithDescription("Echoes a message"), mcp.WithString("message", mcp.Required())),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			calls.Add(1)
			return mcp.NewToolResultText("echo: " + req.GetString("message", "")), nil
		})
	return s
}

// streamableServer serves s over Streamable HTTP and returns a relay
// Server dialing it.
func streamableServer(t *testing.T, id string, s *server.MCPServer) Server {
	t.Helper()
	hs := httptest.NewServer(server.NewStreamableHTTPServer(s))
	t.Cleanup(hs.Close)
	return Server{ID: id, Name: "Echo", Dial: func(context.Context) (transport.Conn, error) {
		return transport.NewStreamableHTTP(transport.HTTPOptions{URL: hs.URL + "/mcp"}), nil
	}}
}

// hostClient is a real mcp-go client connected to the relay endpoint.
func hostClient(t *testing.T, e *env, serverID string) *client.Client {
	t.Helper()
	c, err := client.NewStreamableHttpClient(e.url(serverID),
		mcptransport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + testToken}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "test-host", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func callEcho(t *testing.T, c *client.Client, msg string) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = "echo"
	req.Params.Arguments = map[string]any{"message": msg}
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func resultText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

func TestApprovedCallRunsUpstream(t *testing.T) {
	var calls atomic.Int64
	e := newEnv(t, []Server{streamableServer(t, "echo", echoServer(&calls))})
	c := hostClient(t, e, "echo")

	res := callEcho(t, c, "hello")
	if res.IsError || resultText(res) != "echo: hello" {
		t.Fatalf("result = %+v", res)
	}
	if calls.Load() != 1 {
		t.Fatalf("tool ran %d times, want 1", calls.Load())
	}
	ev := e.waitEvent(func(ev gate.Event) bool { return ev.Kind == gate.EventAdded })
	if ev.Call.Server != "echo" || ev.Call.Tool != "echo" || ev.Call.Client != "test-host" ||
		string(ev.Call.Arguments) != `{"message":"hello"}` {
		t.Errorf("gate saw %+v", ev.Call)
	}
}

func TestDeniedCallNeverReachesUpstream(t *testing.T) {
	var calls atomic.Int64
	e := newEnv(t, []Server{streamableServer(t, "echo", echoServer(&calls))})
	e.setDecider(func(gate.Call) *gate.Decision { return &gate.Decision{Reason: "not today"} })
	c := hostClient(t, e, "echo")

	res := callEcho(t, c, "hello")
	if !res.IsError || resultText(res) != "Denied in Countersign by the user: not today" {
		t.Fatalf("result = %+v", res)
	}
	if calls.Load() != 0 {
		t.Fatalf("denied tool ran %d times", calls.Load())
	}
}

// acceptEdits stands in for the guard's rules on edited arguments: the
// gate refuses an edit to a call without a Check.
type acceptEdits struct{ Gate }

func (g acceptEdits) Submit(ctx context.Context, c gate.Call) gate.Verdict {
	c.Check = func(json.RawMessage) error { return nil }
	return g.Gate.Submit(ctx, c)
}

func TestEditedArgumentsAreWhatRuns(t *testing.T) {
	var calls atomic.Int64
	e := newEnv(t, []Server{streamableServer(t, "echo", echoServer(&calls))}, func(o *Options) { o.Gate = acceptEdits{o.Gate} })
	e.setDecider(func(gate.Call) *gate.Decision {
		return &gate.Decision{Approve: true, Arguments: []byte(`{"message":"edited"}`)}
	})
	c := hostClient(t, e, "echo")
	if got := resultText(callEcho(t, c, "original")); got != "echo: edited" {
		t.Fatalf("result %q, want the edited argument", got)
	}
}

func TestTimedOutCallIsDenied(t *testing.T) {
	var calls atomic.Int64
	e := newEnv(t, []Server{streamableServer(t, "echo", echoServer(&calls))})
	e.gate.SetTimeout(50 * time.Millisecond)
	e.setDecider(func(gate.Call) *gate.Decision { return nil })
	c := hostClient(t, e, "echo")

	res := callEcho(t, c, "hello")
	if !res.IsError || !strings.Contains(resultText(res), "timed out") || calls.Load() != 0 {
		t.Fatalf("result = %+v, calls = %d", res, calls.Load())
	}
}

func TestOtherRequestsPassWithoutReview(t *testing.T) {
	var calls atomic.Int64
	e := newEnv(t, []Server{streamableServer(t, "echo", echoServer(&calls))})
	e.setDecider(func(c gate.Call) *gate.Decision {
		t.Errorf("gate asked about %s", c.Tool)
		return &gate.Decision{}
	})
	c := hostClient(t, e, "echo")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tools, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil || len(tools.Tools) != 1 || tools.Tools[0].Name != "echo" {
		t.Fatalf("tools/list = %+v, %v", tools, err)
	}
}

func TestListenerSecurity(t *testing.T) {
	srv, _ := pipeServer("pipe")
	e := newEnv(t, []Server{srv}, func(o *Options) { o.AllowedOrigins = []string{"vscode-webview://abc"} })
	port := e.srv.Listener.Addr().String()[len("127.0.0.1:"):]
	tests := []struct {
		name   string
		host   string
		origin string
		authz  string
		path   string
		want   int
	}{
		{"rebinding host", "evil.example.com", "", "Bearer " + testToken, "/servers/pipe/mcp", 403},
		{"loopback host with another port", "127.0.0.1:1", "", "Bearer " + testToken, "/servers/pipe/mcp", 403},
		{"hostile origin", "127.0.0.1:" + port, "http://evil.example.com", "Bearer " + testToken, "/servers/pipe/mcp", 403},
		{"no token", "127.0.0.1:" + port, "", "", "/servers/pipe/mcp", 401},
		{"wrong token", "localhost:" + port, "", "Bearer " + strings.Repeat("0", 64), "/servers/pipe/mcp", 401},
		{"unknown server", "127.0.0.1:" + port, "", "Bearer " + testToken, "/servers/nope/mcp", 404},
		{"unknown session", "127.0.0.1:" + port, "", "Bearer " + testToken, "/servers/pipe/mcp", 404},
		{"origin of another loopback port", "127.0.0.1:" + port, "http://127.0.0.1:3000", "Bearer " + testToken, "/servers/pipe/mcp", 403},
		{"allowed origin passes", "localhost:" + port, "vscode-webview://abc", "Bearer " + testToken, "/servers/pipe/mcp", 202},
		{"our own origin passes", "127.0.0.1:" + port, "http://127.0.0.1:" + port, "Bearer " + testToken, "/servers/pipe/mcp", 202},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, e.srv.URL+tt.path, strings.NewReader(`{"jsonrpc":"2.0","method":"notifications/x"}`))
			req.Host = tt.host
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			if tt.authz != "" {
				req.Header.Set("Authorization", tt.authz)
			}
			if tt.name == "unknown session" {
				req.Header.Set("Mcp-Session-Id", "nope")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}

func TestNewRefusesWeakSetups(t *testing.T) {
	g := gate.New(gate.Options{})
	srv, _ := pipeServer("pipe")
	if _, err := New(Options{Gate: g, Token: "short", Servers: []Server{srv}}); err == nil {
		t.Error("a short token was accepted")
	}
	if _, err := New(Options{Token: testToken, Servers: []Server{srv}}); err == nil {
		t.Error("a relay without a gate was accepted")
	}
	if _, err := New(Options{Gate: g, Token: testToken, Servers: []Server{srv, srv}}); err == nil {
		t.Error("duplicate server ids were accepted")
	}
}

// TestFaithfulPassThrough plays the upstream by hand: everything the relay
// does not act on must cross it byte for byte, but for the request id.
func TestFaithfulPassThrough(t *testing.T) {
	srv, conns := pipeServer("pipe")
	e := newEnv(t, []Server{srv})

	// initialize: the host's id is replaced upstream and restored on return.
	resp := make(chan *http.Response, 1)
	go func() {
		resp <- e.post(context.Background(), "pipe", "", `{"jsonrpc":"2.0","id":"init-ü","method":"initialize","params":{"protocolVersion":"2026-07-28","capabilities":{},"clientInfo":{"name":"x","version":"1"},"x-unknown":[1,2]}}`)
	}()
	up := <-conns
	got := up.next(t)
	if want := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2026-07-28","capabilities":{},"clientInfo":{"name":"x","version":"1"},"x-unknown":[1,2]}}`; string(got) != want {
		t.Fatalf("upstream got\n%s\nwant\n%s", got, want)
	}
	up.in <- transport.Incoming{Raw: []byte(`{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2099-01-01","capabilities":{"experimental":{"big":12345678901234567890}},"serverInfo":{"name":"u","version":"9"},"instructions":"keep"}}`)}
	r := <-resp
	sid := r.Header.Get("Mcp-Session-Id")
	msgs := readMessages(t, r)
	if want := `{"jsonrpc":"2.0","id":"init-ü","result":{"protocolVersion":"2099-01-01","capabilities":{"experimental":{"big":12345678901234567890}},"serverInfo":{"name":"u","version":"9"},"instructions":"keep"}}`; len(msgs) != 1 || string(msgs[0]) != want {
		t.Fatalf("host got %s\nwant %s", msgs, want)
	}

	// An unknown method with a big integer id and _meta passes unchanged.
	go func() {
		resp <- e.post(context.Background(), "pipe", sid, `{"jsonrpc":"2.0","id":98765432109876543210,"method":"vendor/custom","params":{"_meta":{"progressToken":77,"k":1e400},"n":98765432109876543210}}`)
	}()
	got = up.next(t)
	if want := `{"jsonrpc":"2.0","id":2,"method":"vendor/custom","params":{"_meta":{"progressToken":77,"k":1e400},"n":98765432109876543210}}`; string(got) != want {
		t.Fatalf("upstream got\n%s\nwant\n%s", got, want)
	}
	// A notification sent while the request runs goes to its stream intact.
	progress := `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":77,"progress":1,"_meta":{"x":18446744073709551616}}}`
	up.in <- transport.Incoming{Raw: []byte(progress)}
	up.in <- transport.Incoming{Raw: []byte(`{"jsonrpc":"2.0","id":2,"error":{"code":-32601,"message":"nope","data":{"z":null}}}`)}
	msgs = readMessages(t, <-resp)
	if len(msgs) != 2 || string(msgs[0]) != progress ||
		string(msgs[1]) != `{"jsonrpc":"2.0","id":98765432109876543210,"error":{"code":-32601,"message":"nope","data":{"z":null}}}` {
		t.Fatalf("host got %s", msgs)
	}

	// Host notifications and answers to server requests pass unchanged.
	up.in <- transport.Incoming{Raw: []byte(`{"jsonrpc":"2.0","id":"srv-1","method":"elicitation/create","params":{"message":"?","requestedSchema":{"type":"object"}}}`)}
	waitServerRequest(t, e, "pipe", sid, `"srv-1"`)
	for _, body := range []string{
		`{"jsonrpc":"2.0","method":"notifications/roots/list_changed","params":{"_meta":{"a":[]}}}`,
		`{"jsonrpc":"2.0","id":"srv-1","result":{"action":"accept","content":{"n":12345678901234567890}}}`,
	} {
		r := e.post(context.Background(), "pipe", sid, body)
		r.Body.Close()
		if r.StatusCode != http.StatusAccepted {
			t.Fatalf("status %d for %s", r.StatusCode, body)
		}
		if got := up.next(t); string(got) != body {
			t.Fatalf("upstream got %s, want %s", got, body)
		}
	}
}

// TestServerRequestsReachTheHost checks a server-to-client request made while
// no request of the host is open reaches its GET stream, with no time cap.
func TestServerRequestsReachTheHost(t *testing.T) {
	srv, conns := pipeServer("pipe")
	e := newEnv(t, []Server{srv})
	go func() {
		c := <-conns
		c.each(func(msg []byte) {
			if bytes.Contains(msg, []byte(`"initialize"`)) {
				c.in <- transport.Incoming{Raw: []byte(`{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"u","version":"1"}}}`)}
				// Queued before any host stream exists: must wait, not vanish.
				c.in <- transport.Incoming{Raw: []byte(`{"jsonrpc":"2.0","id":"e1","method":"elicitation/create","params":{"message":"Name?","requestedSchema":{"type":"object"}}}`)}
			}
		})
	}()
	sid := e.initialize("pipe")
	req, _ := http.NewRequest(http.MethodGet, e.url("pipe"), nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ev, err := transport.NewEventReader(resp.Body).Next()
	if err != nil || string(ev.Data) != `{"jsonrpc":"2.0","id":"e1","method":"elicitation/create","params":{"message":"Name?","requestedSchema":{"type":"object"}}}` {
		t.Fatalf("GET stream: %s, %v", ev.Data, err)
	}
}

// TestAmbiguousCallIsRefused: a call whose params servers could read two
// ways is refused before anyone is asked, and never reaches the server.
func TestAmbiguousCallIsRefused(t *testing.T) {
	srv, conns := pipeServer("pipe")
	e := newEnv(t, []Server{srv})
	e.setDecider(func(c gate.Call) *gate.Decision {
		t.Errorf("the person was asked about %s", c.Tool)
		return &gate.Decision{}
	})
	go func() {
		c := <-conns
		c.each(func(msg []byte) {
			if bytes.Contains(msg, []byte(`"initialize"`)) {
				c.in <- transport.Incoming{Raw: []byte(`{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"u","version":"1"}}}`)}
			} else if bytes.Contains(msg, []byte(`tools/call`)) {
				t.Errorf("ambiguous call reached the server: %s", msg)
			}
		})
	}()
	sid := e.initialize("pipe")
	for _, params := range []string{
		`{"name":"delete_repo","Name":"echo","arguments":{}}`,
		`{"name":"create_issue","arguments":{"owner":"DEFRA","Owner":"evil"}}`,
	} {
		msgs := readMessages(t, e.post(context.Background(), "pipe", sid, `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":`+params+`}`))
		if len(msgs) != 1 || !bytes.Contains(msgs[0], []byte(`"code":-32602`)) {
			t.Errorf("params %s: host got %s", params, msgs)
		}
	}
}

// modern is the _meta a 2026-07-28 client puts on every request.
const modern = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"modern-host","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}`

// TestSessionlessProtocol drives the 2026-07-28 revision (no initialize, no
// session) through the relay to a real mcp-go server that speaks it.
func TestSessionlessProtocol(t *testing.T) {
	var calls atomic.Int64
	e := newEnv(t, []Server{streamableServer(t, "echo", echoServer(&calls))})
	hdr := func(method, name string) []string {
		h := []string{"Mcp-Protocol-Version", "2026-07-28", "Mcp-Method", method}
		if name != "" {
			h = append(h, "Mcp-Name", name)
		}
		return h
	}
	resp := e.post(context.Background(), "echo", "", `{"jsonrpc":"2.0","id":"d1","method":"server/discover","params":{`+modern+`}}`, hdr("server/discover", "")...)
	if resp.Header.Get("Mcp-Session-Id") != "" {
		t.Error("the relay minted a session for a sessionless request")
	}
	msgs := readMessages(t, resp)
	if len(msgs) != 1 || !bytes.Contains(msgs[0], []byte(`"id":"d1"`)) || !bytes.Contains(msgs[0], []byte(`"supportedVersions"`)) || !bytes.Contains(msgs[0], []byte(`2026-07-28`)) {
		t.Fatalf("server/discover: %s", msgs)
	}

	msgs = readMessages(t, e.post(context.Background(), "echo", "", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"message":"stateless"},`+modern+`}}`, hdr("tools/call", "echo")...))
	if len(msgs) != 1 || !bytes.Contains(msgs[0], []byte(`"id":7`)) || !bytes.Contains(msgs[0], []byte("echo: stateless")) {
		t.Fatalf("tools/call: %s", msgs)
	}
	ev := e.waitEvent(func(ev gate.Event) bool { return ev.Kind == gate.EventAdded })
	if ev.Call.Client != "modern-host" {
		t.Errorf("gate saw client %q, want the name from _meta", ev.Call.Client)
	}
	// Two independent hosts may both use id 7: each gets its own answer.
	var wg sync.WaitGroup
	for _, word := range []string{"left", "right"} {
		wg.Go(func() {
			msgs := readMessages(t, e.post(context.Background(), "echo", "", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"message":"`+word+`"},`+modern+`}}`, hdr("tools/call", "echo")...))
			if len(msgs) != 1 || !bytes.Contains(msgs[0], []byte("echo: "+word)) {
				t.Errorf("%s got %s", word, msgs)
			}
		})
	}
	wg.Wait()
}

// TestCancellation covers each way a host cancels: notifications/cancelled
// for a held call (denied, never sent), for a forwarded request (remapped to
// the upstream id), for an unknown id (dropped), and, sessionless, closing
// the stream (cancelled upstream under the upstream id).
func TestCancellation(t *testing.T) {
	srv, conns := pipeServer("pipe")
	e := newEnv(t, []Server{srv})
	e.setDecider(func(gate.Call) *gate.Decision { return nil }) // nobody answers
	sid, up := pipeSession(t, e, conns)
	resp := make(chan *http.Response, 1)

	// A held call: cancelling it denies it, and upstream never hears of it.
	go func() {
		resp <- e.post(context.Background(), "pipe", sid, `{"jsonrpc":"2.0","id":"held","method":"tools/call","params":{"name":"echo","arguments":{}}}`)
	}()
	e.waitEvent(func(ev gate.Event) bool { return ev.Kind == gate.EventAdded })
	e.post(context.Background(), "pipe", sid, `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"held"}}`).Body.Close()
	ev := e.waitEvent(func(ev gate.Event) bool { return ev.Kind == gate.EventEnded })
	if ev.Verdict.Outcome != gate.OutcomeCancelled {
		t.Errorf("held call ended %v, want cancelled", ev.Verdict.Outcome)
	}
	readMessages(t, <-resp)

	// A forwarded request: the cancellation names the upstream id.
	go func() {
		resp <- e.post(context.Background(), "pipe", sid, `{"jsonrpc":"2.0","id":"slow","method":"resources/read","params":{"uri":"x:y"}}`)
	}()
	got := up.next(t)
	upID := string(field(t, got, "id"))
	e.post(context.Background(), "pipe", sid, `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"slow","reason":"user"}}`).Body.Close()
	if got := up.next(t); !bytes.Contains(got, []byte(`"requestId":`+upID)) || !bytes.Contains(got, []byte(`"reason":"user"`)) {
		t.Errorf("upstream got %s, want a cancellation of %s", got, upID)
	}
	if msgs := readMessages(t, <-resp); len(msgs) != 1 || !bytes.Contains(msgs[0], []byte(`"id":"slow"`)) {
		t.Errorf("host stream after cancel: %s", msgs)
	}

	// An id nobody knows is dropped, not passed on.
	e.post(context.Background(), "pipe", sid, `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`).Body.Close()
	select {
	case got := <-up.sent:
		t.Errorf("unknown cancellation reached upstream: %s", got)
	case <-time.After(100 * time.Millisecond):
	}

	// Sessionless: closing the stream cancels the forwarded request.
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		resp <- e.post(ctx, "pipe", "", `{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"x:z",`+modern+`}}`, "Mcp-Method", "resources/read", "Mcp-Name", "x:z")
	}()
	up2 := <-conns
	got = up2.next(t)
	upID = string(field(t, got, "id"))
	r := <-resp // headers arrived: the stream is open
	cancel()
	r.Body.Close()
	if got := up2.next(t); !bytes.Contains(got, []byte(`"notifications/cancelled"`)) || !bytes.Contains(got, []byte(`"requestId":`+upID)) {
		t.Errorf("upstream got %s, want a cancellation of %s", got, upID)
	}
}

// field decodes one top-level member of a message.
func field(t *testing.T, msg []byte, name string) json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(msg, &m); err != nil {
		t.Fatalf("not JSON: %s", msg)
	}
	return m[name]
}

// pipeSession opens a host session on a pipe upstream the test plays.
func pipeSession(t *testing.T, e *env, conns chan *pipeConn) (string, *pipeConn) {
	t.Helper()
	var up *pipeConn
	sid := playedSession(t, e, "pipe", func() *pipeConn { up = <-conns; return up })
	return sid, up
}

// playedSession opens a 2025-06-18 host session on server, whose upstream
// (taken by dial once the relay dials it) the test plays, and returns the
// session id.
func playedSession(t *testing.T, e *env, server string, dial func() *pipeConn) string {
	t.Helper()
	resp := make(chan *http.Response, 1)
	go func() {
		resp <- e.post(context.Background(), server, "", `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}`)
	}()
	up := dial()
	up.next(t)
	up.in <- transport.Incoming{Raw: []byte(`{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"u","version":"1"}}}`)}
	r := <-resp
	readMessages(t, r)
	return r.Header.Get("Mcp-Session-Id")
}

func TestHostDisconnectDeniesHeldCall(t *testing.T) {
	srv, conns := pipeServer("pipe")
	e := newEnv(t, []Server{srv})
	e.setDecider(func(gate.Call) *gate.Decision { return nil })
	sid, up := pipeSession(t, e, conns)
	ctx, cancel := context.WithCancel(context.Background())
	resp := make(chan *http.Response, 1)
	go func() {
		resp <- e.post(ctx, "pipe", sid, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{}}}`)
	}()
	e.waitEvent(func(ev gate.Event) bool { return ev.Kind == gate.EventAdded })
	r := <-resp
	cancel()
	r.Body.Close()
	ev := e.waitEvent(func(ev gate.Event) bool { return ev.Kind == gate.EventEnded })
	if ev.Verdict.Outcome != gate.OutcomeDisconnected {
		t.Fatalf("outcome %v, want disconnected", ev.Verdict.Outcome)
	}
	select {
	case got := <-up.sent:
		t.Errorf("upstream got %s after the host left", got)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestUpstreamLossIsReportedNotHung(t *testing.T) {
	srv, conns := pipeServer("pipe")
	e := newEnv(t, []Server{srv})
	e.setDecider(func(c gate.Call) *gate.Decision {
		if c.Tool == "held" {
			return nil
		}
		return &gate.Decision{Approve: true}
	})
	sid, up := pipeSession(t, e, conns)
	resp := make(chan *http.Response, 2)
	go func() {
		resp <- e.post(context.Background(), "pipe", sid, `{"jsonrpc":"2.0","id":"fwd","method":"tools/list"}`)
	}()
	up.next(t)
	go func() {
		resp <- e.post(context.Background(), "pipe", sid, `{"jsonrpc":"2.0","id":"held","method":"tools/call","params":{"name":"held"}}`)
	}()
	e.waitEvent(func(ev gate.Event) bool { return ev.Kind == gate.EventAdded })
	up.lose(errors.New("child process exited"))

	for range 2 {
		msgs := readMessages(t, <-resp)
		if len(msgs) != 1 {
			t.Fatalf("got %s", msgs)
		}
		switch {
		case bytes.Contains(msgs[0], []byte(`"id":"fwd"`)):
			if !bytes.Contains(msgs[0], []byte(`"error"`)) || !bytes.Contains(msgs[0], []byte("child process exited")) {
				t.Errorf("forwarded request got %s", msgs[0])
			}
		case bytes.Contains(msgs[0], []byte(`"id":"held"`)):
			if !bytes.Contains(msgs[0], []byte(`"isError":true`)) || !bytes.Contains(msgs[0], []byte("connection to the server was lost")) {
				t.Errorf("held call got %s", msgs[0])
			}
		default:
			t.Errorf("unexpected %s", msgs[0])
		}
	}
	r := e.post(context.Background(), "pipe", sid, `{"jsonrpc":"2.0","id":9,"method":"tools/list"}`)
	r.Body.Close()
	if r.StatusCode != http.StatusNotFound {
		t.Errorf("request on the lost session: status %d, want 404 so the host re-initializes", r.StatusCode)
	}
}

func TestHeldCallKeepsTheHostInformed(t *testing.T) {
	srv, conns := pipeServer("pipe")
	e := newEnv(t, []Server{srv}, func(o *Options) { o.KeepAlive = 20 * time.Millisecond })
	release := make(chan struct{})
	e.setDecider(func(c gate.Call) *gate.Decision { return nil })
	sid, up := pipeSession(t, e, conns)
	resp := e.post(context.Background(), "pipe", sid, `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"slow","arguments":{},"_meta":{"progressToken":"tok"}}}`)
	defer resp.Body.Close()
	go func(release <-chan struct{}) {
		<-release
		ev := e.waitEvent(func(ev gate.Event) bool { return ev.Kind == gate.EventAdded })
		e.gate.Decide(ev.Call.ID, gate.Decision{Approve: true})
		up.next(t)
		up.in <- transport.Incoming{Raw: []byte(`{"jsonrpc":"2.0","id":2,"result":{"content":[]}}`)}
	}(release)
	// Read raw lines: keep-alive comments and progress must both come
	// while the call waits.
	sc := bufio.NewScanner(resp.Body)
	progress, comments := 0, 0
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, ":") {
			comments++
		}
		if strings.Contains(line, "Waiting for approval in Countersign") && strings.Contains(line, `"progressToken":"tok"`) {
			progress++
		}
		if progress >= 2 && comments >= 2 && release != nil {
			close(release)
			release = nil
		}
		if strings.Contains(line, `"id":4`) && strings.Contains(line, `"result"`) {
			return
		}
	}
	t.Fatalf("stream ended without the answer; progress %d, keep-alives %d", progress, comments)
}

// TestProgressRisesAcrossTheWaitAndTheServer: a held call's host gets
// Countersign's waiting progress, then the server's own, which starts again
// from 0. The spec says progress MUST increase: the host sees one rising
// sequence (the server's values moved up past the wait's, totals with
// them), and a server value that would not rise never reaches it.
func TestProgressRisesAcrossTheWaitAndTheServer(t *testing.T) {
	srv, conns := pipeServer("pipe")
	e := newEnv(t, []Server{srv}, func(o *Options) { o.KeepAlive = 10 * time.Millisecond })
	e.setDecider(func(c gate.Call) *gate.Decision { return nil })
	sid, up := pipeSession(t, e, conns)
	resp := e.post(context.Background(), "pipe", sid, `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"slow","arguments":{},"_meta":{"progressToken":"tok"}}}`)
	defer resp.Body.Close()
	release := make(chan struct{})
	go func() {
		<-release
		ev := e.waitEvent(func(ev gate.Event) bool { return ev.Kind == gate.EventAdded })
		e.gate.Decide(ev.Call.ID, gate.Decision{Approve: true})
		up.next(t)
		for _, n := range []string{
			`{"progressToken":"tok","progress":0,"total":100}`,
			`{"progressToken":"tok","progress":0,"total":100,"message":"again"}`,
			`{"progressToken":"tok","progress":2.5,"total":100}`,
		} {
			up.in <- transport.Incoming{Raw: []byte(`{"jsonrpc":"2.0","method":"notifications/progress","params":` + n + `}`)}
		}
		up.in <- transport.Incoming{Raw: []byte(`{"jsonrpc":"2.0","id":2,"result":{"content":[]}}`)}
	}()
	type progress struct {
		Progress float64  `json:"progress"`
		Total    *float64 `json:"total"`
		Message  string   `json:"message"`
	}
	var got []progress
	waiting := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if strings.Contains(data, `"id":4`) {
			break
		}
		var n struct {
			Method string   `json:"method"`
			Params progress `json:"params"`
		}
		if json.Unmarshal([]byte(data), &n) != nil || n.Method != "notifications/progress" {
			continue
		}
		got = append(got, n.Params)
		if n.Params.Message == "Waiting for approval in Countersign" {
			if waiting++; waiting == 3 {
				close(release)
			}
		}
	}
	var server []progress
	for i, p := range got {
		if i > 0 && p.Progress <= got[i-1].Progress {
			t.Fatalf("progress went from %v to %v: %+v", got[i-1].Progress, p.Progress, got)
		}
		if p.Message != "Waiting for approval in Countersign" {
			server = append(server, p)
		}
	}
	if waiting < 3 || len(server) != 2 || server[0].Message == "again" {
		t.Fatalf("got %+v; want at least 3 waiting values, then the server's first and third", got)
	}
	for i, sent := range []float64{0, 2.5} {
		if p := server[i]; p.Total == nil || *p.Total-p.Progress != 100-sent {
			t.Fatalf("the server's total moved differently from its progress: %+v", server)
		}
	}
}

// TestBatchOf2025_03_26 sends a JSON-RPC batch, as 2025-03-26 allows, from a
// host that accepts only JSON: the answers come back as one array.
func TestBatchOf2025_03_26(t *testing.T) {
	srv, conns := pipeServer("pipe")
	e := newEnv(t, []Server{srv})
	sid, up := pipeSession(t, e, conns)
	go func() {
		for answered := 0; answered < 2; {
			msg := up.next(t)
			id := field(t, msg, "id")
			if id == nil {
				continue // the notification in the batch
			}
			answered++
			up.in <- transport.Incoming{Raw: []byte(`{"jsonrpc":"2.0","id":` + string(id) + `,"result":{"echo":` + string(field(t, msg, "method")) + `}}`)}
		}
	}()
	resp := e.post(context.Background(), "pipe", sid,
		`[{"jsonrpc":"2.0","id":"a","method":"tools/list"},{"jsonrpc":"2.0","method":"notifications/x"},{"jsonrpc":"2.0","id":"b","method":"prompts/list"}]`,
		"Accept", "application/json")
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}
	msgs := readMessages(t, resp)
	var answers []map[string]json.RawMessage
	if len(msgs) != 1 || json.Unmarshal(msgs[0], &answers) != nil || len(answers) != 2 {
		t.Fatalf("got %s, want an array of two answers", msgs)
	}
	got := map[string]string{}
	for _, a := range answers {
		got[string(a["id"])] = string(a["result"])
	}
	if got[`"a"`] != `{"echo":"tools/list"}` || got[`"b"`] != `{"echo":"prompts/list"}` {
		t.Fatalf("answers %v", got)
	}
}

func TestIdleSessionsAreClosed(t *testing.T) {
	srv, conns := pipeServer("pipe")
	e := newEnv(t, []Server{srv})
	sid, up := pipeSession(t, e, conns)
	e.relay.reap(time.Now().Add(DefaultIdleTimeout / 2))
	select {
	case <-up.Done():
		t.Fatal("a session idle for half the timeout was closed")
	default:
	}
	e.relay.reap(time.Now().Add(DefaultIdleTimeout + time.Minute))
	select {
	case <-up.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the idle session's upstream was not closed")
	}
	r := e.post(context.Background(), "pipe", sid, `{"jsonrpc":"2.0","id":9,"method":"tools/list"}`)
	r.Body.Close()
	if r.StatusCode != http.StatusNotFound {
		t.Errorf("status %d after reaping, want 404", r.StatusCode)
	}
}

// TestACallWhoseHostLeftBeforeItWasHeldNeverRuns is issue 16's finding: a
// host whose connection closes right after it sent a tool call, before the
// gate holds the call, used to go unnoticed, so a quick approval ran the
// call after the host had left. The call now ends as disconnected without
// anyone being asked, and nothing reaches the server.
func TestACallWhoseHostLeftBeforeItWasHeldNeverRuns(t *testing.T) {
	srv, conns := pipeServer("pipe")
	e := newEnv(t, []Server{srv}) // the person approves at once
	sid, up := pipeSession(t, e, conns)

	release := make(chan struct{})
	holdStarts = func() { <-release }
	defer func() { holdStarts = func() {} }()
	ctx, cancel := context.WithCancel(context.Background())
	resp := e.post(ctx, "pipe", sid, `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"delete_repository","arguments":{}}}`)
	cancel()
	resp.Body.Close()
	// Wait until the relay has seen the host go.
	e.relay.mu.Lock()
	s := e.relay.sessions[sid]
	e.relay.mu.Unlock()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		s.mu.Lock()
		gone := false
		for _, req := range s.byHostID {
			gone = gone || req.gone
		}
		s.mu.Unlock()
		if gone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the relay never noticed the host leave")
		}
	}
	close(release)
	// The hold ends at once: the request is forgotten.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		s.mu.Lock()
		left := len(s.byHostID)
		s.mu.Unlock()
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the call whose host left is still held")
		}
	}
	e.mu.Lock()
	events := len(e.events)
	e.mu.Unlock()
	if events != 0 {
		t.Fatalf("the person was shown a call whose host had left: %d gate events", events)
	}
	select {
	case m := <-up.sent:
		t.Fatalf("the server got %s after the host had left", m)
	case <-time.After(200 * time.Millisecond):
	}
}
