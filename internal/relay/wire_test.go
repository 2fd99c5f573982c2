package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/transport"
	"github.com/google/go-cmp/cmp"
)

// recConn is an upstream the test plays by hand that also records the
// headers of every message, in the order the relay sent them.
type recConn struct {
	*pipeConn
	mu      sync.Mutex
	all     []string // every message received, in order
	headers []http.Header
}

func (c *recConn) Send(ctx context.Context, msg []byte, h http.Header) error {
	c.mu.Lock()
	c.all = append(c.all, string(msg))
	c.headers = append(c.headers, h.Clone())
	c.mu.Unlock()
	return c.pipeConn.Send(ctx, msg, h)
}

func (c *recConn) received() ([]string, []http.Header) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.all...), append([]http.Header(nil), c.headers...)
}

// recServer is a Server whose sessions are recConns handed to the test.
// Each answers initialize by itself.
func recServer(id string) (Server, chan *recConn) {
	conns := make(chan *recConn, 10)
	return Server{ID: id, Name: "Rec", Dial: func(context.Context) (transport.Conn, error) {
		c := &recConn{pipeConn: newPipeConn()}
		conns <- c
		return c, nil
	}}, conns
}

// auditFilter is a Filter that passes everything and records drops.
type auditFilter struct {
	benchFilter
	mu      sync.Mutex
	dropped []string
}

func (f *auditFilter) Dropped(server, method, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dropped = append(f.dropped, method)
}

func (f *auditFilter) drops() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.dropped...)
}

// recSession opens a 2025-06-18 host session on a recConn upstream.
func recSession(t *testing.T, e *env, conns chan *recConn) (string, *recConn) {
	t.Helper()
	var up *recConn
	sid := playedSession(t, e, "rec", func() *pipeConn { up = <-conns; return up.pipeConn })
	return sid, up
}

// sentinel sends a ping through the relay and waits for the upstream to get
// it: everything the host sent before it has been routed by then.
func sentinel(t *testing.T, e *env, sid string, up *recConn) {
	t.Helper()
	resp := make(chan *http.Response, 1)
	go func() {
		resp <- e.post(context.Background(), "rec", sid, `{"jsonrpc":"2.0","id":"sentinel","method":"ping"}`)
	}()
	for {
		msg := up.next(t)
		if bytes.Contains(msg, []byte(`"ping"`)) {
			up.in <- transport.Incoming{Raw: []byte(`{"jsonrpc":"2.0","id":` + string(field(t, msg, "id")) + `,"result":{}}`)}
			break
		}
	}
	readMessages(t, <-resp)
}

// waitServerRequest reads the host session's GET stream until the server
// request id has reached it.
func waitServerRequest(t *testing.T, e *env, server, sid, id string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.url(server), nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := transport.NewEventReader(resp.Body)
	for {
		ev, err := events.Next()
		if err != nil {
			t.Fatalf("the server request %s never reached the host: %v", id, err)
		}
		if string(field(t, ev.Data, "id")) == id {
			return
		}
	}
}

// TestHostNotificationsAreOnlyTheSpecs: a request method sent without an
// id — a tools/call, a resources/read, alone, in a batch, with or without a
// session — never reaches the server and is audited; the notifications a
// client may send pass byte for byte.
func TestHostNotificationsAreOnlyTheSpecs(t *testing.T) {
	srv, conns := recServer("rec")
	f := &auditFilter{}
	e := newEnv(t, []Server{srv}, func(o *Options) { o.Filter = f })
	e.setDecider(func(c gate.Call) *gate.Decision {
		t.Errorf("the person was asked about %s: no call was sent with an id", c.Tool)
		return &gate.Decision{}
	})
	sid, up := recSession(t, e, conns)

	call := `{"jsonrpc":"2.0","method":"tools/call","params":{"name":"delete_repository","arguments":{"owner":"evil-org","repo":"secret"}}}`
	read := `{"jsonrpc":"2.0","method":"resources/read","params":{"uri":"repo://evil-org/secret/contents/README.md"}}`
	allowed := []string{
		`{"jsonrpc":"2.0","method":"notifications/roots/list_changed","params":{"_meta":{"a":[]}}}`,
		`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"srv-tok","progress":1}}`,
		`{"jsonrpc":"2.0","method":"notifications/tasks/status","params":{"taskId":"t1","status":"working"}}`,
	}
	for _, body := range []string{
		call,
		read,
		`[` + call + `,` + read + `]`,
		`{"jsonrpc":"2.0","method":"vendor/anything","params":{}}`,
		`{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}`, // a server's notification
		allowed[0], allowed[1], allowed[2],
	} {
		r := e.post(context.Background(), "rec", sid, body)
		r.Body.Close()
		if r.StatusCode != http.StatusAccepted {
			t.Errorf("status %d for %s", r.StatusCode, body)
		}
	}
	sentinel(t, e, sid, up)

	// Without a session the relay opens a shared one: still nothing.
	r := e.post(context.Background(), "rec", "", `[`+call+`,`+read+`]`)
	r.Body.Close()
	shared := <-conns

	got, _ := up.received()
	want := []string{
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}`,
		allowed[0], allowed[1], allowed[2],
		`{"jsonrpc":"2.0","id":2,"method":"ping"}`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the server received (-want +got):\n%s", diff)
	}
	if got, _ := shared.received(); len(got) != 0 {
		t.Errorf("the sessionless upstream received %q", got)
	}
	wantDrops := []string{"tools/call", "resources/read", "tools/call", "resources/read", "vendor/anything", "notifications/tools/list_changed", "tools/call", "resources/read"}
	if diff := cmp.Diff(wantDrops, f.drops()); diff != "" {
		t.Errorf("audited drops (-want +got):\n%s", diff)
	}
}

// TestHostAnswersOnlyToOpenServerRequests: an answer reaches the server only
// for a request the server made in that session, and only once.
func TestHostAnswersOnlyToOpenServerRequests(t *testing.T) {
	srv, conns := recServer("rec")
	f := &auditFilter{}
	e := newEnv(t, []Server{srv}, func(o *Options) { o.Filter = f })
	sid, up := recSession(t, e, conns)
	other, _ := recSession(t, e, conns)

	up.in <- transport.Incoming{Raw: []byte(`{"jsonrpc":"2.0","id":"e\u0031","method":"elicitation/create","params":{"message":"Name?","requestedSchema":{"type":"object"}}}`)}
	waitServerRequest(t, e, "rec", sid, `"e\u0031"`)

	answer := `{"jsonrpc":"2.0","id":"e1","result":{"action":"accept","content":{"name":"x"}}}`
	for _, tc := range []struct{ sid, body string }{
		{sid, `{"jsonrpc":"2.0","id":"never-asked","result":{"action":"accept"}}`},
		{sid, `{"jsonrpc":"2.0","id":1,"result":{}}`}, // the upstream id of the relay's own initialize
		{other, answer}, // another session's request
		{sid, answer},   // the real answer
		{sid, answer},   // twice
		{sid, `{"jsonrpc":"2.0","id":"e1","error":{"code":-1,"message":"again"}}`},
	} {
		r := e.post(context.Background(), "rec", tc.sid, tc.body)
		r.Body.Close()
		if r.StatusCode != http.StatusAccepted {
			t.Errorf("status %d for %s", r.StatusCode, tc.body)
		}
	}
	sentinel(t, e, sid, up)
	got, _ := up.received()
	want := []string{
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}`,
		answer,
		`{"jsonrpc":"2.0","id":2,"method":"ping"}`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the server received (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"response", "response", "response", "response", "response"}, f.drops()); diff != "" {
		t.Errorf("audited drops (-want +got):\n%s", diff)
	}
}

// TestCallParamsAreReadByExactName: a member that only encoding/json would
// take for name, arguments, _meta or progressToken is refused before
// anyone is asked; the server gets nothing. With exact names, the person
// sees exactly the arguments the server gets.
func TestCallParamsAreReadByExactName(t *testing.T) {
	srv, conns := recServer("rec")
	e := newEnv(t, []Server{srv})
	var mu sync.Mutex
	var asked []string
	e.setDecider(func(c gate.Call) *gate.Decision {
		mu.Lock()
		asked = append(asked, c.Tool+" "+string(c.Arguments))
		mu.Unlock()
		return &gate.Decision{Approve: true}
	})
	sid, up := recSession(t, e, conns)
	// The server answers every request, so that a call that does get
	// through shows in what it received rather than hanging the test.
	go func() {
		up.each(func(msg []byte) {
			if id := field(t, msg, "id"); id != nil {
				up.in <- transport.Incoming{Raw: []byte(`{"jsonrpc":"2.0","id":` + string(id) + `,"result":{"content":[]}}`)}
			}
		})
	}()
	for _, params := range []string{
		`{"name":"get_me","Arguments":{"owner":"DEFRA","repo":"ffc-pay"}}`,
		`{"name":"get_me","ARGUMENTS":{"owner":"DEFRA","repo":"ffc-pay"}}`,
		`{"name":"get_me","argumentſ":{"owner":"DEFRA","repo":"ffc-pay"}}`,
		`{"name":"get_me","argument\u017f":{"owner":"DEFRA","repo":"ffc-pay"}}`,
		`{"Name":"get_me","arguments":{}}`,
		`{"name":"get_me","NAME":"delete_repository","arguments":{}}`,
		`{"name":"get_me","arguments":{},"_META":{"progressToken":1}}`,
		`{"name":"get_me","arguments":{},"_meta":{"progre\u017fsToken":1}}`,
		`{"name":"get_me","arguments":{},"_meta":{"\u212a":1,"progressToken":1,"PROGRESSTOKEN":2}}`,
		`{"name":"get_me","arguments":{},"_meta":"not an object"}`,
	} {
		msgs := readMessages(t, e.post(context.Background(), "rec", sid, `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":`+params+`}`))
		if len(msgs) != 1 || !bytes.Contains(msgs[0], []byte(`"code":-32602`)) {
			t.Errorf("params %s: host got %s", params, msgs)
		}
	}
	// The exact names go through, as they were.
	readMessages(t, e.post(context.Background(), "rec", sid, `{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"get_me","arguments":{"owner":"DEFRA","repo":"ffc-pay"},"_meta":{"progressToken":9}}}`))
	got, _ := up.received()
	if len(got) != 2 || !strings.HasSuffix(got[1], `,"method":"tools/call","params":{"name":"get_me","arguments":{"owner":"DEFRA","repo":"ffc-pay"},"_meta":{"progressToken":9}}}`) {
		t.Errorf("the server received %q, want only initialize and the exact call", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]string{`get_me {"owner":"DEFRA","repo":"ffc-pay"}`}, asked); diff != "" {
		t.Errorf("the person was asked (-want +got):\n%s", diff)
	}
}

// TestUpstreamHeadersComeFromTheApprovedMessage: Mcp-Method, Mcp-Name and
// Mcp-Param-* reaching the server describe the message the person
// approved, not headers the AI app sent (those must agree with the AI
// app's message, else it is refused); MCP-Protocol-Version passes.
func TestUpstreamHeadersComeFromTheApprovedMessage(t *testing.T) {
	srv, conns := recServer("rec")
	e := newEnv(t, []Server{srv}, func(o *Options) { o.Gate = acceptEdits{o.Gate} })
	e.setDecider(func(c gate.Call) *gate.Decision {
		if strings.Contains(string(c.Arguments), `"region":"us-west1"`) {
			// The person edits the region before approving.
			return &gate.Decision{Approve: true, Arguments: json.RawMessage(`{"region":"eu-west2","query":"SELECT 1"}`)}
		}
		return &gate.Decision{Approve: true}
	})
	lying := []string{
		"Mcp-Protocol-Version", "2026-07-28",
		"Mcp-Method", "tools/call",
		"Mcp-Name", "delete_repository",
		"Mcp-Param-Region", "attacker-region",
		"Mcp-Param-Owner", "evil-org",
		"Mcp-Extra", "x",
	}
	// The AI app's own headers agree with its message (e.post derives
	// Mcp-Method and Mcp-Name); Mcp-Extra is not passed on.
	honest := []string{"Mcp-Protocol-Version", "2026-07-28", "Mcp-Extra", "x"}
	// Sessionless: every request goes to the one shared upstream session,
	// dialled by the first.
	var shared *recConn
	post := func(body string, more ...string) (*recConn, []byte, http.Header, []byte) {
		resp := make(chan *http.Response, 1)
		go func() {
			resp <- e.post(context.Background(), "rec", "", body, append(append([]string(nil), honest...), more...)...)
		}()
		if shared == nil {
			shared = <-conns
		}
		up := shared
		msg := up.next(t)
		_, hs := up.received()
		up.in <- transport.Incoming{Raw: []byte(`{"jsonrpc":"2.0","id":` + string(field(t, msg, "id")) + `,"result":{"tools":[{"name":"execute_sql","inputSchema":{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"},"query":{"type":"string"}}}}]}}`)}
		msgs := readMessages(t, <-resp)
		return up, msg, hs[len(hs)-1], msgs[0]
	}

	t.Run("tools/call", func(t *testing.T) {
		_, msg, h, _ := post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_me","arguments":{},` + modern + `}}`)
		if !bytes.Contains(msg, []byte(`"name":"get_me"`)) {
			t.Fatalf("upstream got %s", msg)
		}
		want := http.Header{"Mcp-Protocol-Version": {"2026-07-28"}, "Mcp-Method": {"tools/call"}, "Mcp-Name": {"get_me"}}
		if diff := cmp.Diff(want, h); diff != "" {
			t.Errorf("upstream headers (-want +got):\n%s", diff)
		}
	})
	t.Run("tools/list teaches the x-mcp-header annotations", func(t *testing.T) {
		_, _, h, _ := post(`{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{` + modern + `}}`)
		want := http.Header{"Mcp-Protocol-Version": {"2026-07-28"}, "Mcp-Method": {"tools/list"}}
		if diff := cmp.Diff(want, h); diff != "" {
			t.Errorf("upstream headers (-want +got):\n%s", diff)
		}
	})
	t.Run("edited arguments", func(t *testing.T) {
		_, msg, h, _ := post(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"execute_sql","arguments":{"region":"us-west1","query":"SELECT 1"},`+modern+`}}`, "Mcp-Param-Region", "us-west1")
		if !bytes.Contains(msg, []byte(`"region":"eu-west2"`)) {
			t.Fatalf("upstream got %s", msg)
		}
		want := http.Header{"Mcp-Protocol-Version": {"2026-07-28"}, "Mcp-Method": {"tools/call"}, "Mcp-Name": {"execute_sql"}, "Mcp-Param-Region": {"eu-west2"}}
		if diff := cmp.Diff(want, h); diff != "" {
			t.Errorf("upstream headers (-want +got):\n%s", diff)
		}
	})
	t.Run("a value a header cannot carry plainly", func(t *testing.T) {
		_, _, h, _ := post(`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"execute_sql","arguments":{"region":" Zürich ","query":"q"},`+modern+`}}`, "Mcp-Param-Region", "=?base64?IFrDvHJpY2gg?=")
		if got := h.Get("Mcp-Param-Region"); got != "=?base64?IFrDvHJpY2gg?=" {
			t.Errorf("Mcp-Param-Region = %q", got)
		}
	})
	t.Run("headers that disagree with the message are refused", func(t *testing.T) {
		resp := e.post(context.Background(), "rec", "", `{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"get_me","arguments":{},`+modern+`}}`, lying...)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte(`"code":-32020`)) {
			t.Errorf("HTTP %d %s, want 400 with -32020", resp.StatusCode, body)
		}
	})
	t.Run("an older revision gets no derived headers", func(t *testing.T) {
		resp := make(chan *http.Response, 1)
		go func() {
			resp <- e.post(context.Background(), "rec", "", `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"get_me","arguments":{}}}`,
				"Mcp-Protocol-Version", "2025-06-18", "Mcp-Method", "tools/call", "Mcp-Name", "delete_repository")
		}()
		msg := shared.next(t)
		_, hs := shared.received()
		shared.in <- transport.Incoming{Raw: []byte(`{"jsonrpc":"2.0","id":` + string(field(t, msg, "id")) + `,"result":{}}`)}
		readMessages(t, <-resp)
		want := http.Header{"Mcp-Protocol-Version": {"2025-06-18"}}
		if diff := cmp.Diff(want, hs[len(hs)-1]); diff != "" {
			t.Errorf("upstream headers (-want +got):\n%s", diff)
		}
	})
}

// TestHeadersOnTheWire sends a call through the real Streamable HTTP
// transport to a server that records every byte of each POST: the
// request metadata headers it gets are the approved message's.
func TestHeadersOnTheWire(t *testing.T) {
	type post struct {
		header http.Header
		body   string
	}
	var mu sync.Mutex
	var posts []post
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		posts = append(posts, post{r.Header.Clone(), string(body)})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"jsonrpc":"2.0","id":`+string(field(t, body, "id"))+`,"result":{"content":[]}}`)
	}))
	t.Cleanup(hs.Close)
	e := newEnv(t, []Server{{ID: "wire", Name: "Wire", Dial: func(context.Context) (transport.Conn, error) {
		return transport.NewStreamableHTTP(transport.HTTPOptions{URL: hs.URL}), nil
	}}})
	readMessages(t, e.post(context.Background(), "wire", "", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_me","arguments":{},`+modern+`}}`,
		"Mcp-Protocol-Version", "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "get_me", "Mcp-Param-Owner", "evil-org"))
	mu.Lock()
	defer mu.Unlock()
	if len(posts) != 1 {
		t.Fatalf("the server got %d POSTs", len(posts))
	}
	if want := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_me","arguments":{},` + modern + `}}`; posts[0].body != want {
		t.Errorf("the server got %s, want %s", posts[0].body, want)
	}
	h := posts[0].header
	mcp := http.Header{}
	for k, v := range h {
		if strings.HasPrefix(strings.ToLower(k), "mcp-") {
			mcp[k] = v
		}
	}
	want := http.Header{"Mcp-Protocol-Version": {"2026-07-28"}, "Mcp-Method": {"tools/call"}, "Mcp-Name": {"get_me"}}
	if diff := cmp.Diff(want, mcp); diff != "" {
		t.Errorf("the server's Mcp-* headers (-want +got):\n%s", diff)
	}
}

func TestIDKey(t *testing.T) {
	same := [][2]string{{`"a"`, `"\u0061"`}, {`100`, `1e2`}, {`100`, `100.0`}, {`-0`, `0`}, {`12345678901234567890`, `12345678901234567890`}}
	for _, p := range same {
		if idKey(json.RawMessage(p[0])) != idKey(json.RawMessage(p[1])) {
			t.Errorf("%s and %s got different keys", p[0], p[1])
		}
	}
	differ := [][2]string{{`"1"`, `1`}, {`null`, `""`}, {`12345678901234567890`, `12345678901234567891`}, {`1e400`, `2e400`}, {`0.5`, `1`}}
	for _, p := range differ {
		if idKey(json.RawMessage(p[0])) == idKey(json.RawMessage(p[1])) {
			t.Errorf("%s and %s got one key", p[0], p[1])
		}
	}
}
