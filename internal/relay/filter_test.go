package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/jsonrpc"
	"github.com/countersign/countersign/internal/transport"
	"github.com/google/go-cmp/cmp"
)

// recordingFilter rewrites by fixed rules and records what it was told.
type recordingFilter struct {
	mu        sync.Mutex
	forwarded []string
	results   []string // "method callID result|error"
	messages  []string // "kind method callID params|result|error"
	delivered []string // "callID true|false"
}

func (f *recordingFilter) Delivered(server, callID string, delivered bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delivered = append(f.delivered, fmt.Sprintf("%s %t", callID, delivered))
}

func (f *recordingFilter) ToolsListed(server string, result json.RawMessage) json.RawMessage {
	return bytes.ReplaceAll(result, []byte(`{"name":"hidden"},`), nil)
}

func (f *recordingFilter) CheckResource(server, method, uri string) string {
	if strings.Contains(uri, "secret") {
		return "not in the allowlist: " + method
	}
	return ""
}

func (f *recordingFilter) Forwarded(server, callID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forwarded = append(f.forwarded, server+" "+callID)
}

func (f *recordingFilter) Result(server, method, callID string, result, rpcError json.RawMessage) json.RawMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	if result == nil {
		f.results = append(f.results, method+" "+callID+" error")
		return bytes.ReplaceAll(rpcError, []byte("hunter2"), []byte("[redacted: password]"))
	}
	f.results = append(f.results, method+" "+callID+" result")
	return bytes.ReplaceAll(result, []byte("hunter2"), []byte("[redacted: password]"))
}

// ServerMessage records what it was given and redacts "hunter2", returning
// nil when there is none, as the guard does.
func (f *recordingFilter) ServerMessage(server string, m ServerMessage) json.RawMessage {
	part := "params"
	if m.Kind == jsonrpc.KindResponse {
		part = "result"
		if m.Error {
			part = "error"
		}
	}
	if m.Members {
		part = "members " + string(m.Payload)
	}
	f.mu.Lock()
	f.messages = append(f.messages, fmt.Sprintf("%s %s %s %s", m.Kind, m.Method, m.CallID, part))
	f.mu.Unlock()
	if !bytes.Contains(m.Payload, []byte("hunter2")) {
		return nil
	}
	return bytes.ReplaceAll(m.Payload, []byte("hunter2"), []byte("[redacted: password]"))
}

func TestFilterSeesWhatTheRelayIntercepts(t *testing.T) {
	srv, conns := pipeServer("pipe")
	f := &recordingFilter{}
	e := newEnv(t, []Server{srv}, func(o *Options) { o.Filter = f })
	sid, up := pipeSession(t, e, conns)

	exchange := func(body, answer string) []byte {
		t.Helper()
		resp := make(chan [][]byte, 1)
		go func() { resp <- readMessages(t, e.post(context.Background(), "pipe", sid, body)) }()
		sent := up.next(t)
		up.in <- transport.Incoming{Raw: []byte(strings.Replace(answer, `"id":ID`, `"id":`+string(field(t, sent, "id")), 1))}
		msgs := <-resp
		return msgs[len(msgs)-1]
	}

	got := exchange(`{"jsonrpc":"2.0","id":"L","method":"tools/list"}`,
		`{"jsonrpc":"2.0","id":ID,"result":{"tools":[{"name":"hidden"},{"name":"echo"}],"nextCursor":"c2"}}`)
	if want := `{"jsonrpc":"2.0","id":"L","result":{"tools":[{"name":"echo"}],"nextCursor":"c2"}}`; string(got) != want {
		t.Errorf("tools/list answer\n got %s\nwant %s", got, want)
	}

	got = exchange(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{}}}`,
		`{"jsonrpc":"2.0","id":ID,"result":{"content":[{"type":"text","text":"pw hunter2"}]}}`)
	if want := `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"pw [redacted: password]"}]}}`; string(got) != want {
		t.Errorf("tools/call answer\n got %s\nwant %s", got, want)
	}

	got = exchange(`{"jsonrpc":"2.0","id":8,"method":"resources/read","params":{"uri":"file:///ok"}}`,
		`{"jsonrpc":"2.0","id":ID,"error":{"code":-32002,"message":"not found"}}`)
	if !bytes.Contains(got, []byte(`"not found"`)) {
		t.Errorf("resources/read error answer: %s", got)
	}

	// A refused read never reaches the server.
	msgs := readMessages(t, e.post(context.Background(), "pipe", sid, `{"jsonrpc":"2.0","id":9,"method":"resources/read","params":{"uri":"file:///secret"}}`))
	if len(msgs) != 1 || !bytes.Contains(msgs[0], []byte(`not in the allowlist: resources/read`)) || !bytes.Contains(msgs[0], []byte(`-32001`)) {
		t.Errorf("refused read answered %s", msgs)
	}
	select {
	case m := <-up.sent:
		t.Errorf("a refused read reached the server: %s", m)
	default:
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.forwarded) != 1 || !strings.HasPrefix(f.forwarded[0], "pipe ") {
		t.Errorf("forwarded = %q, want one approved call", f.forwarded)
	}
	callID := strings.TrimPrefix(f.forwarded[0], "pipe ")
	want := []string{"tools/call " + callID + " result", "resources/read  error"}
	if strings.Join(f.results, "|") != strings.Join(want, "|") {
		t.Errorf("results = %q, want %q", f.results, want)
	}
}

func TestSetServersClosesOnlyChangedSessions(t *testing.T) {
	a, aConns := pipeServer("pipe")
	a.Fingerprint = "v1"
	e := newEnv(t, []Server{a})
	sid, up := pipeSession(t, e, aConns)

	// Same settings: the session survives.
	if err := e.relay.SetServers([]Server{a}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-up.done:
		t.Fatal("an unchanged server's session was closed")
	default:
	}
	// New settings: it closes, and the host is told to start again.
	b := a
	b.Fingerprint = "v2"
	if err := e.relay.SetServers([]Server{b}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-up.done:
	case <-time.After(5 * time.Second):
		t.Fatal("a changed server's session stayed open")
	}
	resp := e.post(context.Background(), "pipe", sid, `{"jsonrpc":"2.0","id":1,"method":"ping"}`)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("old session answered %d, want 404", resp.StatusCode)
	}
	// A removed server has no endpoint.
	if err := e.relay.SetServers(nil); err != nil {
		t.Fatal(err)
	}
	resp = e.post(context.Background(), "pipe", "", `{"jsonrpc":"2.0","id":1,"method":"ping"}`)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("removed server answered %d, want 404", resp.StatusCode)
	}
	if err := e.relay.SetServers([]Server{a, a}); err == nil {
		t.Error("duplicate ids accepted")
	}
}

// TestFilterSeesEveryServerMessage sends each kind of server message
// toward the host through a filter that redacts "hunter2": requests and
// notifications the server makes during a tool call, and answers to other
// requests. What the filter changes arrives spliced, every other byte as
// the server wrote it, ids untouched; a change that would alter a progress
// token withholds the message instead.
func TestFilterSeesEveryServerMessage(t *testing.T) {
	srv, conns := pipeServer("pipe")
	f := &recordingFilter{}
	e := newEnv(t, []Server{srv}, func(o *Options) { o.Filter = f })
	sid, up := pipeSession(t, e, conns)

	// A tool call with a progress token, approved at once; while it runs
	// the server sends requests and notifications toward the host.
	resp := make(chan [][]byte, 1)
	go func() {
		resp <- readMessages(t, e.post(context.Background(), "pipe", sid,
			`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{},"_meta":{"progressToken":"pt"}}}`))
	}()
	call := up.next(t)
	upID := field(t, call, "id")
	fromServer := []struct {
		raw     string
		related bool
	}{
		{`{"jsonrpc":"2.0","id":"s1","method":"sampling/createMessage","params":{"messages":[{"role":"user","content":{"type":"text","text":"pw hunter2"}}],"maxTokens":5}}`, true},
		{`{"jsonrpc":"2.0","id":"e1","method":"elicitation/create","params":{"message":"Name?", "requestedSchema":{"type":"object"}}}`, true},
		{`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"pt","progress":1,"message":"copying hunter2"}}`, false},
		{`{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":{"n":1e400,"msg":"clean"}}}`, false},
		// Redacting these would change the ids they are routed by.
		{`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"hunter2","progress":2}}`, true},
		{`{"jsonrpc":"2.0","id":"s2","method":"sampling/createMessage","params":{"_meta":{"progressToken":"hunter2"},"messages":[]}}`, true},
		{`{"jsonrpc":"2.0","id":` + string(upID) + `,"error":{"code":-32042,"message":"open https://x/?pw=hunter2","data":{"x":1}}}`, true},
	}
	for _, m := range fromServer {
		in := transport.Incoming{Raw: []byte(m.raw)}
		if m.related {
			in.RelatedTo = upID
		}
		up.in <- in
	}
	var got []string
	for _, m := range <-resp {
		if !bytes.Contains(m, []byte("Waiting for approval")) {
			got = append(got, string(m))
		}
	}
	want := []string{
		`{"jsonrpc":"2.0","id":"s1","method":"sampling/createMessage","params":{"messages":[{"role":"user","content":{"type":"text","text":"pw [redacted: password]"}}],"maxTokens":5}}`,
		`{"jsonrpc":"2.0","id":"e1","method":"elicitation/create","params":{"message":"Name?", "requestedSchema":{"type":"object"}}}`,
		// Moved up past the one "waiting for approval" value (0) the host
		// got while the call was held, so that progress rises.
		`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"pt","progress":2,"message":"copying [redacted: password]"}}`,
		`{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":{"n":1e400,"msg":"clean"}}}`,
		`{"jsonrpc":"2.0","id":7,"error":{"code":-32042,"message":"open https://x/?pw=[redacted: password]","data":{"x":1}}}`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("messages on the call's stream (-want +got):\n%s", diff)
	}
	// The withheld request is refused to the server under its own id.
	refusal := up.next(t)
	if string(field(t, refusal, "id")) != `"s2"` || !bytes.Contains(refusal, []byte(`-32001`)) || bytes.Contains(refusal, []byte("hunter2")) {
		t.Errorf("refusal sent upstream: %s", refusal)
	}

	// Answers to other requests: result and error payloads.
	exchange := func(body, answer string) string {
		t.Helper()
		resp := make(chan [][]byte, 1)
		go func() { resp <- readMessages(t, e.post(context.Background(), "pipe", sid, body)) }()
		sent := up.next(t)
		up.in <- transport.Incoming{Raw: []byte(strings.Replace(answer, `"id":ID`, `"id":`+string(field(t, sent, "id")), 1))}
		msgs := <-resp
		return string(msgs[len(msgs)-1])
	}
	answers := []struct{ body, answer, want string }{
		{
			`{"jsonrpc":"2.0","id":"p","method":"prompts/get","params":{"name":"args-prompt","arguments":{"city":"hunter2"}}}`,
			`{"jsonrpc":"2.0","id":ID,"result":{"messages":[{"role":"user","content":{"type":"text","text":"Weather in hunter2?"}}]},"_extra":1}`,
			`{"jsonrpc":"2.0","id":"p","result":{"messages":[{"role":"user","content":{"type":"text","text":"Weather in [redacted: password]?"}}]},"_extra":1}`,
		},
		{
			`{"jsonrpc":"2.0","id":"c","method":"completion/complete","params":{}}`,
			`{"jsonrpc":"2.0", "error" : {"code":-32602,"message":"no hunter2"} ,"id":ID}`,
			`{"jsonrpc":"2.0", "error" : {"code":-32602,"message":"no [redacted: password]"} ,"id":"c"}`,
		},
		{
			`{"jsonrpc":"2.0","id":9007199254740993,"method":"resources/templates/list"}`,
			`{"jsonrpc":"2.0","id":ID,"result":{"resourceTemplates":[{"uriTemplate":"demo://{id}","name":"t"}],"nextCursor":"eyJwIjoyfQ"}}`,
			`{"jsonrpc":"2.0","id":9007199254740993,"result":{"resourceTemplates":[{"uriTemplate":"demo://{id}","name":"t"}],"nextCursor":"eyJwIjoyfQ"}}`,
		},
	}
	for _, a := range answers {
		if got := exchange(a.body, a.answer); got != a.want {
			t.Errorf("answer\n got %s\nwant %s", got, a.want)
		}
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	callID := strings.TrimPrefix(f.forwarded[0], "pipe ")
	wantSeen := []string{
		"response initialize  result",
		"request sampling/createMessage " + callID + " params",
		"request elicitation/create " + callID + " params",
		"notification notifications/progress " + callID + " params",
		"notification notifications/message  params",
		"notification notifications/progress " + callID + " params",
		"request sampling/createMessage " + callID + " params",
		`response prompts/get  members {"_extra":1}`,
		"response prompts/get  result",
		"response completion/complete  error",
		"response resources/templates/list  result",
	}
	if diff := cmp.Diff(wantSeen, f.messages); diff != "" {
		t.Errorf("filter saw (-want +got):\n%s", diff)
	}
	if want := []string{"tools/call " + callID + " error"}; !cmp.Equal(want, f.results) {
		t.Errorf("results = %q, want %q", f.results, want)
	}
}

// TestRelayErrorsQuotingTheServerAreFiltered checks the relay's own error
// answers, which quote what an upstream or its connection said, pass
// through the filter too.
func TestRelayErrorsQuotingTheServerAreFiltered(t *testing.T) {
	broken := Server{ID: "broken", Name: "Broken", Dial: func(context.Context) (transport.Conn, error) {
		return nil, errors.New("HTTP 401: token hunter2 is not valid")
	}}
	pipe, conns := pipeServer("pipe")
	f := &recordingFilter{}
	e := newEnv(t, []Server{broken, pipe}, func(o *Options) { o.Filter = f })

	msgs := readMessages(t, e.post(context.Background(), "broken", "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`))
	if len(msgs) != 1 || !bytes.Contains(msgs[0], []byte(`token [redacted: password] is not valid`)) || bytes.Contains(msgs[0], []byte("hunter2")) {
		t.Errorf("dial failure answered %s", msgs)
	}
	resp := e.post(context.Background(), "broken", "", `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || !bytes.Contains(body, []byte("[redacted: password]")) || bytes.Contains(body, []byte("hunter2")) {
		t.Errorf("dial failure of a notification: %d %s", resp.StatusCode, body)
	}

	// A request in flight when the connection is lost.
	sid, up := pipeSession(t, e, conns)
	answer := make(chan [][]byte, 1)
	go func() {
		answer <- readMessages(t, e.post(context.Background(), "pipe", sid, `{"jsonrpc":"2.0","id":"g","method":"prompts/get","params":{"name":"p"}}`))
	}()
	up.next(t)
	up.lose(errors.New("stream reset: proxy said hunter2"))
	got := <-answer
	if len(got) != 1 || !bytes.Contains(got[0], []byte(`proxy said [redacted: password]`)) || !bytes.Contains(got[0], []byte(`"id":"g"`)) {
		t.Errorf("lost connection answered %s", got)
	}
}
