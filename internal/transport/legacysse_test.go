package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/countersign/countersign/internal/jsonrpc"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// dialLegacy serves h and connects a LegacySSE client to path on it.
func dialLegacy(t *testing.T, h http.Handler, path string) (*LegacySSE, *recorder) {
	t.Helper()
	rec := newRecorder(h)
	hs := httptest.NewServer(rec)
	t.Cleanup(hs.Close)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, err := DialLegacySSE(ctx, HTTPOptions{URL: hs.URL + path, Client: hs.Client()})
	if err != nil {
		t.Fatalf("DialLegacySSE: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, rec
}

func TestLegacySSESession(t *testing.T) {
	c, rec := dialLegacy(t, server.NewSSEServer(newTestMCPServer()), "/sse")
	if v := initialize(t, c, "2024-11-05"); v != "2024-11-05" {
		t.Errorf("server chose protocol version %q, want 2024-11-05", v)
	}
	echoRoundTrip(t, c, "2")
	echoRoundTrip(t, c, `"big"`)

	if err := c.Send(context.Background(), callTool("3", "echo", map[string]any{"message": "x"}), http.Header{"X-Host-Tag": {"b"}}); err != nil {
		t.Fatal(err)
	}
	recvResponse(t, c, "3")
	var tagged seen
	for _, s := range rec.requests() {
		if m, err := jsonrpc.Parse(s.Body); err == nil && string(m.ID) == "3" {
			tagged = s
		}
	}
	if got := tagged.Header.Get("X-Host-Tag"); got != "b" {
		t.Errorf("per-message header X-Host-Tag = %q, want b", got)
	}
	if !strings.HasPrefix(rec.post(t, "initialize").Header.Get("Content-Type"), "application/json") {
		t.Errorf("POST Content-Type = %q", rec.post(t, "initialize").Header.Get("Content-Type"))
	}

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	waitDone(t, c)
	if !errors.Is(c.Err(), ErrClosed) {
		t.Errorf("Err() = %v, want ErrClosed", c.Err())
	}
	if err := c.Send(context.Background(), []byte(initializedNotification), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Close = %v, want ErrClosed", err)
	}
}

func TestLegacySSEServerEndsTheStream(t *testing.T) {
	sse := server.NewSSEServer(newTestMCPServer())
	c, _ := dialLegacy(t, sse, "/sse")
	initialize(t, c, "2024-11-05")
	sse.CloseSessions()
	waitDone(t, c)
	if !errors.Is(c.Err(), ErrSessionLost) {
		t.Errorf("Err() = %v, want ErrSessionLost", c.Err())
	}
}

func TestDialLegacySSERejects(t *testing.T) {
	tests := []struct {
		name   string
		stream string // written after the headers; empty for a 404
	}{
		{name: "an endpoint on another origin", stream: "event: endpoint\ndata: http://elsewhere.example/message\n\n"},
		{name: "an endpoint on another scheme and port", stream: "event: endpoint\ndata: https://127.0.0.1/message\n\n"},
		{name: "a stream that ends before the endpoint", stream: "event: message\ndata: {}\n\n"},
		{name: "an HTTP error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.stream == "" {
					http.NotFound(w, r)
					return
				}
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, tt.stream)
			}))
			defer hs.Close()
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			c, err := DialLegacySSE(ctx, HTTPOptions{URL: hs.URL + "/sse", Client: hs.Client()})
			if err == nil {
				c.Close()
				t.Fatal("DialLegacySSE succeeded")
			}
		})
	}
}

// legacyFront serves a real mcp-go server over the 2024-11-05 HTTP+SSE
// transport, adding what mcp-go's own SSEServer lacks: requests from the
// server to the client, here elicitation/create.
type legacyFront struct {
	srv    *server.MCPServer
	ctx    context.Context // ends with the test, releasing waiting handlers
	frames chan []byte     // messages for the event stream
	notes  chan mcp.JSONRPCNotification

	mu      sync.Mutex
	next    int
	pending map[string]chan jsonrpc.Message // our request id → the answer
}

func newLegacyFront(t *testing.T, srv *server.MCPServer) *legacyFront {
	return &legacyFront{
		srv:     srv,
		ctx:     t.Context(),
		frames:  make(chan []byte, 16),
		notes:   make(chan mcp.JSONRPCNotification, 16),
		pending: make(map[string]chan jsonrpc.Message),
	}
}

// The front is its own single client session.
func (f *legacyFront) Initialize()                                         {}
func (f *legacyFront) Initialized() bool                                   { return true }
func (f *legacyFront) NotificationChannel() chan<- mcp.JSONRPCNotification { return f.notes }
func (f *legacyFront) SessionID() string                                   { return "front" }

// RequestElicitation sends elicitation/create on the stream and waits for
// the client to POST the answer.
func (f *legacyFront) RequestElicitation(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	f.mu.Lock()
	f.next++
	id := fmt.Sprintf(`"front-%d"`, f.next)
	answer := make(chan jsonrpc.Message, 1)
	f.pending[id] = answer
	f.mu.Unlock()
	params, err := json.Marshal(req.Params)
	if err != nil {
		return nil, err
	}
	f.push(fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%s,"method":"elicitation/create","params":%s}`, id, params))
	select {
	case m := <-answer:
		if m.Error != nil {
			return nil, fmt.Errorf("client error: %s", m.Error)
		}
		var res mcp.ElicitationResult
		if err := json.Unmarshal(m.Result, &res); err != nil {
			return nil, err
		}
		return &res, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (f *legacyFront) push(msg []byte) {
	select {
	case f.frames <- msg:
	case <-f.ctx.Done():
	}
}

func (f *legacyFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/sse":
		w.Header().Set("Content-Type", "text/event-stream")
		WriteEvent(w, "", "endpoint", []byte("/message"))
		w.(http.Flusher).Flush()
		for {
			select {
			case msg := <-f.frames:
				WriteEvent(w, "", "message", msg)
				w.(http.Flusher).Flush()
			case <-r.Context().Done():
				return
			case <-f.ctx.Done():
				return
			}
		}
	case r.Method == http.MethodPost && r.URL.Path == "/message":
		body, _ := io.ReadAll(r.Body)
		m, err := jsonrpc.Parse(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		if m.Kind == jsonrpc.KindResponse {
			f.mu.Lock()
			answer := f.pending[string(m.ID)]
			delete(f.pending, string(m.ID))
			f.mu.Unlock()
			if answer != nil {
				answer <- m
			}
			return
		}
		go func() {
			resp := f.srv.HandleMessage(f.srv.WithContext(f.ctx, f), body)
			if resp == nil {
				return
			}
			if b, err := json.Marshal(resp); err == nil {
				f.push(b)
			}
		}()
	default:
		http.NotFound(w, r)
	}
}

func TestLegacySSEServerToClientRequest(t *testing.T) {
	front := newLegacyFront(t, newTestMCPServer())
	c, _ := dialLegacy(t, front, "/sse")
	initialize(t, c, "2024-11-05")
	ctx := context.Background()
	if err := c.Send(ctx, callTool("2", "ask", nil), nil); err != nil {
		t.Fatal(err)
	}

	answerAsk(t, c, "2")
}
