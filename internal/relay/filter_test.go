package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/transport"
)

// recordingFilter rewrites by fixed rules and records what it was told.
type recordingFilter struct {
	mu        sync.Mutex
	forwarded []string
	results   []string // "method callID result|error"
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
		return nil
	}
	f.results = append(f.results, method+" "+callID+" result")
	return bytes.ReplaceAll(result, []byte("hunter2"), []byte("[redacted: password]"))
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
