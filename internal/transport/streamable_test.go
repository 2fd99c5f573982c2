package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/jsonrpc"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// seen is one HTTP request as the server received it.
type seen struct {
	Method string
	Header http.Header
	Body   []byte
}

// recorder notes every request before passing it to the handler, and
// reports GET requests on gets.
type recorder struct {
	h    http.Handler
	gets chan seen

	mu   sync.Mutex
	reqs []seen
}

func newRecorder(h http.Handler) *recorder {
	return &recorder{h: h, gets: make(chan seen, 16)}
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(body))
	s := seen{Method: req.Method, Header: req.Header.Clone(), Body: body}
	r.mu.Lock()
	r.reqs = append(r.reqs, s)
	r.mu.Unlock()
	if req.Method == http.MethodGet {
		select {
		case r.gets <- s:
		default:
		}
	}
	r.h.ServeHTTP(w, req)
}

func (r *recorder) requests() []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seen(nil), r.reqs...)
}

// post returns the recorded POST whose body has the given JSON-RPC method.
func (r *recorder) post(t *testing.T, method string) seen {
	t.Helper()
	for _, s := range r.requests() {
		if m, err := jsonrpc.Parse(s.Body); err == nil && s.Method == http.MethodPost && m.Method == method {
			return s
		}
	}
	t.Fatalf("no POST of %s was recorded", method)
	return seen{}
}

// waitGET returns the next GET the server receives.
func (r *recorder) waitGET(t *testing.T) seen {
	t.Helper()
	select {
	case s := <-r.gets:
		return s
	case <-time.After(testTimeout):
		t.Fatal("the client opened no GET stream")
	}
	return seen{}
}

// quietHTTP keeps mcp-go's informational logs out of the test output.
var quietHTTP = server.WithStreamableHTTPLogger(slog.New(slog.DiscardHandler))

// startStreamable serves h and connects a StreamableHTTP client to it.
func startStreamable(t *testing.T, h http.Handler) (*StreamableHTTP, *recorder) {
	t.Helper()
	rec := newRecorder(h)
	hs := httptest.NewServer(rec)
	t.Cleanup(hs.Close)
	c := NewStreamableHTTP(HTTPOptions{URL: hs.URL + "/mcp", Client: hs.Client()})
	t.Cleanup(func() { c.Close() })
	return c, rec
}

func TestStreamableHTTPSession(t *testing.T) {
	mcpServer := newTestMCPServer()
	c, rec := startStreamable(t, server.NewStreamableHTTPServer(mcpServer, quietHTTP))
	ctx := context.Background()

	if err := c.Send(ctx, initializeRequest("1", "2025-06-18"), nil); err != nil {
		t.Fatal(err)
	}
	in, m := recvResponse(t, c, "1")
	if string(in.RelatedTo) != "1" {
		t.Errorf("initialize answer RelatedTo = %s, want 1", in.RelatedTo)
	}
	if !strings.Contains(string(m.Result), `"protocolVersion":"2025-06-18"`) {
		t.Errorf("initialize result %s does not accept 2025-06-18", m.Result)
	}
	sid := c.SessionID()
	if sid == "" {
		t.Fatal("no session id after initialize")
	}

	if err := c.Send(ctx, []byte(initializedNotification), nil); err != nil {
		t.Fatal(err)
	}
	get := rec.waitGET(t)
	for name, want := range map[string]string{
		mcp.HeaderSessionID:       sid,
		mcp.HeaderProtocolVersion: "2025-06-18",
		"Accept":                  "text/event-stream",
	} {
		if got := get.Header.Get(name); got != want {
			t.Errorf("GET stream header %s = %q, want %q", name, got, want)
		}
	}

	if err := c.Send(ctx, []byte(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`), http.Header{"X-Host-Tag": {"a"}}); err != nil {
		t.Fatal(err)
	}
	_, m = recvResponse(t, c, "2")
	if !strings.Contains(string(m.Result), `"name":"echo"`) {
		t.Errorf("tools/list result %s has no echo tool", m.Result)
	}
	echoRoundTrip(t, c, `"three"`)

	if err := mcpServer.SendNotificationToSpecificClient(sid, "notifications/message", map[string]any{"level": "info", "data": "unasked"}); err != nil {
		t.Fatal(err)
	}
	in, m = recvMessage(t, c, jsonrpc.KindNotification)
	if m.Method != "notifications/message" || in.RelatedTo != nil {
		t.Errorf("GET stream delivered %s related to %s, want notifications/message related to nothing", in.Raw, in.RelatedTo)
	}

	init := rec.post(t, "initialize")
	if got := init.Header.Get(mcp.HeaderSessionID) + init.Header.Get(mcp.HeaderProtocolVersion); got != "" {
		t.Errorf("initialize carried session or version headers: %v", init.Header)
	}
	if got := init.Header.Get("Accept"); got != "application/json, text/event-stream" {
		t.Errorf("initialize Accept = %q", got)
	}
	for _, method := range []string{"notifications/initialized", "tools/list", "tools/call"} {
		p := rec.post(t, method)
		if got := p.Header.Get(mcp.HeaderSessionID); got != sid {
			t.Errorf("%s Mcp-Session-Id = %q, want %q", method, got, sid)
		}
		if got := p.Header.Get(mcp.HeaderProtocolVersion); got != "2025-06-18" {
			t.Errorf("%s Mcp-Protocol-Version = %q, want 2025-06-18", method, got)
		}
		if got := p.Header.Get("Content-Type"); got != "application/json" {
			t.Errorf("%s Content-Type = %q", method, got)
		}
	}
	if got := rec.post(t, "tools/list").Header.Get("X-Host-Tag"); got != "a" {
		t.Errorf("per-message header X-Host-Tag = %q, want a", got)
	}

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	reqs := rec.requests()
	last := reqs[len(reqs)-1]
	if last.Method != http.MethodDelete || last.Header.Get(mcp.HeaderSessionID) != sid {
		t.Errorf("last request was %s with session %q, want DELETE of %q", last.Method, last.Header.Get(mcp.HeaderSessionID), sid)
	}
	waitDone(t, c)
	if !errors.Is(c.Err(), ErrClosed) {
		t.Errorf("Err() = %v, want ErrClosed", c.Err())
	}
	if err := c.Send(ctx, []byte(`{"jsonrpc":"2.0","id":9,"method":"ping"}`), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Close = %v, want ErrClosed", err)
	}
}

// TestStreamableHTTPNotificationsOnTheResponseStream: messages a server
// sends on a request's stream before its answer arrive in order, tied to
// that request. (A raw server: mcp-go does not promise which stream a
// notification takes, nor that it precedes the answer.)
func TestStreamableHTTPNotificationsOnTheResponseStream(t *testing.T) {
	c, _ := startStreamable(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"working\"}}\n\n")
		io.WriteString(w, "data: {\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"done\"}]}}\n\n")
	}))
	if err := c.Send(context.Background(), callTool("5", "notify", nil), nil); err != nil {
		t.Fatal(err)
	}
	in, m := recvMessage(t, c, jsonrpc.KindNotification)
	if m.Method != "notifications/message" || string(in.RelatedTo) != "5" {
		t.Errorf("got %s related to %s, want notifications/message related to 5", in.Raw, in.RelatedTo)
	}
	in, m = recvResponse(t, c, "5")
	if string(in.RelatedTo) != "5" {
		t.Errorf("answer RelatedTo = %s, want 5", in.RelatedTo)
	}
	if got := toolText(t, m.Result); got != "done" {
		t.Errorf("notify answered %q, want done", got)
	}
}

func TestStreamableHTTPServerToClientRequest(t *testing.T) {
	c, rec := startStreamable(t, server.NewStreamableHTTPServer(newTestMCPServer(), quietHTTP))
	initialize(t, c, "2025-06-18")
	rec.waitGET(t)
	ctx := context.Background()
	if err := c.Send(ctx, callTool("6", "ask", nil), nil); err != nil {
		t.Fatal(err)
	}
	answerAsk(t, c, "6")
}

func TestStreamableHTTPSessionLost(t *testing.T) {
	c, _ := startStreamable(t, server.NewStreamableHTTPServer(newTestMCPServer(), server.WithStateful(true), quietHTTP))
	ctx := context.Background()
	if err := c.Send(ctx, initializeRequest("1", "2025-06-18"), nil); err != nil {
		t.Fatal(err)
	}
	recvResponse(t, c, "1")
	sid := c.SessionID()
	if sid == "" {
		t.Fatal("no session id after initialize")
	}

	// The server forgets the session behind the client's back.
	req, err := http.NewRequest(http.MethodDelete, c.o.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(mcp.HeaderSessionID, sid)
	req.Header.Set(mcp.HeaderProtocolVersion, "2025-06-18")
	resp, err := c.o.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE answered %s", resp.Status)
	}

	err = c.Send(ctx, []byte(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`), nil)
	if !errors.Is(err, ErrSessionLost) {
		t.Fatalf("Send to a forgotten session = %v, want ErrSessionLost", err)
	}
	waitDone(t, c)
	if !errors.Is(c.Err(), ErrSessionLost) {
		t.Errorf("Err() = %v, want ErrSessionLost", c.Err())
	}
	if err := c.Send(ctx, []byte(`{"jsonrpc":"2.0","id":3,"method":"ping"}`), nil); !errors.Is(err, ErrSessionLost) {
		t.Errorf("Send after the loss = %v, want ErrSessionLost", err)
	}
}

func TestStreamableHTTPHTTPErrors(t *testing.T) {
	c, _ := startStreamable(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such endpoint", http.StatusNotFound)
	}))
	err := c.Send(context.Background(), initializeRequest("1", "2025-06-18"), nil)
	var se *HTTPStatusError
	if !errors.As(err, &se) || se.Status != http.StatusNotFound || se.Body != "no such endpoint" {
		t.Fatalf("Send = %v, want an HTTPStatusError 404 with the body", err)
	}
	select {
	case <-c.Done():
		t.Errorf("a 404 before any session ended the connection: %v", c.Err())
	default:
	}
	if err := c.Send(context.Background(), []byte(`{"jsonrpc":"2.0","id":1,"method"`), nil); err == nil {
		t.Error("Send of a broken message succeeded")
	}
}

// TestStreamableHTTPResumesAStreamClosedEarly follows the 2025-11-25 SSE
// polling flow: the server primes the response stream with an event id
// and a retry delay, closes it before the answer, and serves the rest on a
// GET carrying Last-Event-ID, here twice.
func TestStreamableHTTPResumesAStreamClosedEarly(t *testing.T) {
	const progress = `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"p","progress":1}}`
	const answer = `{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"late"}],"_meta":{"n":12345678901234567890}}}`
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost:
			body, _ := io.ReadAll(r.Body)
			m, err := jsonrpc.Parse(body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			switch m.Method {
			case "initialize":
				w.Header().Set(mcp.HeaderSessionID, "s-1")
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-11-25","capabilities":{},"serverInfo":{"name":"raw","version":"0"}}}`, m.ID)
			case "tools/call":
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, "id: ev-1\nretry: 5\ndata: \n\n")
				io.WriteString(w, "id: ev-2\nevent: message\ndata: "+progress+"\n\n")
			default:
				w.WriteHeader(http.StatusAccepted)
			}
		case http.MethodGet:
			w.Header().Set("Content-Type", "text/event-stream")
			switch r.Header.Get("Last-Event-ID") {
			case "ev-2":
				io.WriteString(w, "id: ev-3\nretry: 5\ndata: \n\n") // closed early again
			case "ev-3":
				io.WriteString(w, "id: ev-4\ndata: "+answer+"\n\n")
			default:
				http.Error(w, "no standalone stream", http.StatusMethodNotAllowed)
			}
		default:
			w.WriteHeader(http.StatusOK)
		}
	})
	c, rec := startStreamable(t, h)
	ctx := context.Background()
	if err := c.Send(ctx, initializeRequest("1", "2025-11-25"), nil); err != nil {
		t.Fatal(err)
	}
	recvResponse(t, c, "1")
	if err := c.Send(ctx, callTool("2", "slow", nil), nil); err != nil {
		t.Fatal(err)
	}

	in, _ := recvMessage(t, c, jsonrpc.KindNotification)
	if string(in.Raw) != progress || string(in.RelatedTo) != "2" {
		t.Errorf("got %s related to %s, want the progress notification related to 2", in.Raw, in.RelatedTo)
	}
	in, _ = recvMessage(t, c, jsonrpc.KindResponse)
	if string(in.Raw) != answer || string(in.RelatedTo) != "2" {
		t.Errorf("got %s related to %s, want the answer byte for byte, related to 2", in.Raw, in.RelatedTo)
	}

	var resumes []string
	for _, s := range rec.requests() {
		if s.Method != http.MethodGet {
			continue
		}
		resumes = append(resumes, s.Header.Get("Last-Event-ID"))
		if got := s.Header.Get(mcp.HeaderSessionID); got != "s-1" {
			t.Errorf("resuming GET Mcp-Session-Id = %q, want s-1", got)
		}
		if got := s.Header.Get(mcp.HeaderProtocolVersion); got != "2025-11-25" {
			t.Errorf("resuming GET Mcp-Protocol-Version = %q, want 2025-11-25", got)
		}
	}
	if got, want := strings.Join(resumes, ","), "ev-2,ev-3"; got != want {
		t.Errorf("GETs resumed after %q, want %q", got, want)
	}
}

// TestStreamableHTTPAnswersWhenTheServerDoesNot: a response stream that ends
// with no answer and no way to resume must not leave the request hanging.
func TestStreamableHTTPAnswersWhenTheServerDoesNot(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{}}\n\n")
	}))
	defer hs.Close()
	c := NewStreamableHTTP(HTTPOptions{URL: hs.URL})
	defer c.Close()
	if err := c.Send(context.Background(), []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/list"}`), nil); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 2 {
		select {
		case in := <-c.Incoming():
			got = append(got, string(in.Raw))
		case <-time.After(10 * time.Second):
			t.Fatalf("request left hanging; got %q", got)
		}
	}
	if !strings.Contains(got[1], `"id":7`) || !strings.Contains(got[1], "ended without an answer") {
		t.Fatalf("got %q", got)
	}
}
