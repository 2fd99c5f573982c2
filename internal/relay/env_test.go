package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

const testToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// env is a relay on loopback in front of test servers, with a scripted
// person deciding calls through the gate's in-process interface.
type env struct {
	t     *testing.T
	gate  *gate.Queue
	relay *Relay
	srv   *httptest.Server
	port  int

	mu      sync.Mutex
	decide  func(gate.Call) *gate.Decision // nil decision: leave it waiting
	events  []gate.Event
	changed chan struct{}
}

type envOption func(*Options)

func newEnv(t *testing.T, servers []Server, opts ...envOption) *env {
	t.Helper()
	e := &env{t: t, gate: gate.New(gate.Options{}), changed: make(chan struct{}, 1)}
	e.decide = func(gate.Call) *gate.Decision { return &gate.Decision{Approve: true} }
	e.srv = httptest.NewUnstartedServer(nil)
	e.port = e.srv.Listener.Addr().(*net.TCPAddr).Port
	o := Options{Servers: servers, Gate: e.gate, Token: testToken, Port: e.port, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, opt := range opts {
		opt(&o)
	}
	r, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	e.relay = r
	e.srv.Config.Handler = r
	e.srv.Start()
	sub := e.gate.Subscribe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range sub.Events() {
			e.mu.Lock()
			e.events = append(e.events, ev)
			decide := e.decide
			e.mu.Unlock()
			select {
			case e.changed <- struct{}{}:
			default:
			}
			if ev.Kind == gate.EventAdded {
				if d := decide(ev.Call); d != nil {
					e.gate.Decide(ev.Call.ID, *d)
				}
			}
		}
	}()
	t.Cleanup(func() {
		e.srv.CloseClientConnections()
		e.relay.Close()
		e.srv.Close()
		e.gate.Close()
		<-done
	})
	return e
}

// setDecider replaces the scripted person.
func (e *env) setDecider(f func(gate.Call) *gate.Decision) {
	e.mu.Lock()
	e.decide = f
	e.mu.Unlock()
}

// waitEvent waits until an event matching match has happened.
func (e *env) waitEvent(match func(gate.Event) bool) gate.Event {
	e.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		e.mu.Lock()
		for _, ev := range e.events {
			if match(ev) {
				e.mu.Unlock()
				return ev
			}
		}
		e.mu.Unlock()
		select {
		case <-e.changed:
		case <-deadline:
			e.t.Fatal("timed out waiting for a gate event")
		}
	}
}

func (e *env) url(server string) string {
	return "http://127.0.0.1:" + strconv.Itoa(e.port) + "/servers/" + server + "/mcp"
}

// post sends one raw POST with the token and the usual MCP headers.
func (e *env) post(ctx context.Context, server, sid string, body string, extra ...string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url(server), strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	if _, given := req.Header["Mcp-Method"]; !given {
		standardHeaders(req.Header, body)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

// readMessages reads every message of an SSE or JSON response.
func readMessages(t *testing.T, resp *http.Response) [][]byte {
	t.Helper()
	defer resp.Body.Close()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		b, _ := io.ReadAll(resp.Body)
		return [][]byte{b}
	}
	var out [][]byte
	r := transport.NewEventReader(resp.Body)
	for {
		ev, err := r.Next()
		if err != nil {
			return out
		}
		out = append(out, append([]byte(nil), ev.Data...))
	}
}

// initialize opens a host session with a raw initialize and returns its id.
func (e *env) initialize(server string) string {
	e.t.Helper()
	resp := e.post(context.Background(), server, "", `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{"elicitation":{},"sampling":{},"roots":{}},"clientInfo":{"name":"raw-test-client","version":"1"}}}`)
	sid := resp.Header.Get("Mcp-Session-Id")
	msgs := readMessages(e.t, resp)
	if sid == "" || len(msgs) != 1 || !bytes.Contains(msgs[0], []byte(`"result"`)) {
		e.t.Fatalf("initialize: status %d, session %q, messages %s", resp.StatusCode, sid, msgs)
	}
	resp = e.post(context.Background(), server, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		e.t.Fatalf("initialized: status %d", resp.StatusCode)
	}
	return sid
}

// pipeConn is an upstream the test plays by hand: it sees the exact bytes
// the relay sends and writes exact bytes back.
type pipeConn struct {
	sent chan []byte
	in   chan transport.Incoming
	done chan struct{}
	once sync.Once
	err  error
}

func newPipeConn() *pipeConn {
	return &pipeConn{sent: make(chan []byte, 100), in: make(chan transport.Incoming, 100), done: make(chan struct{})}
}

func (p *pipeConn) Send(_ context.Context, msg []byte, _ http.Header) error {
	select {
	case <-p.done:
		return transport.ErrClosed
	default:
	}
	p.sent <- append([]byte(nil), msg...)
	return nil
}
func (p *pipeConn) Incoming() <-chan transport.Incoming { return p.in }
func (p *pipeConn) Done() <-chan struct{}               { return p.done }
func (p *pipeConn) Err() error                          { return p.err }
func (p *pipeConn) Close() error                        { p.lose(transport.ErrClosed); return nil }
func (p *pipeConn) lose(err error) {
	p.once.Do(func() { p.err = err; close(p.done) })
}

// each calls f with every message the relay sends upstream, until the
// relay closes the session.
func (p *pipeConn) each(f func(msg []byte)) {
	for {
		select {
		case m := <-p.sent:
			f(m)
		case <-p.done:
			return
		}
	}
}

// next returns the next message the relay sent upstream.
func (p *pipeConn) next(t *testing.T) []byte {
	t.Helper()
	select {
	case m := <-p.sent:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("relay sent nothing upstream")
		return nil
	}
}

// pipeServer is a Server whose sessions are pipeConns handed to the test.
func pipeServer(id string) (Server, chan *pipeConn) {
	conns := make(chan *pipeConn, 10)
	return Server{ID: id, Name: "Pipe", Dial: func(context.Context) (transport.Conn, error) {
		c := newPipeConn()
		conns <- c
		return c, nil
	}}, conns
}

// standardHeaders sets Mcp-Method and Mcp-Name for a single 2026-07-28
// message, as a conformant host does (mcp.StandardHeaders).
func standardHeaders(h http.Header, body string) {
	var m struct {
		Method string          `json:"method"`
		Params json.RawMessage `json:"params"`
	}
	if json.Unmarshal([]byte(body), &m) != nil || m.Method == "" {
		return
	}
	version := h.Get(mcp.HeaderProtocolVersion)
	if version == "" {
		var p struct {
			Meta map[string]json.RawMessage `json:"_meta"`
		}
		json.Unmarshal(m.Params, &p)
		json.Unmarshal(p.Meta[mcp.MetaKeyProtocolVersion], &version)
	}
	for k, v := range mcp.StandardHeaders(version, mcp.MCPMethod(m.Method), m.Params) {
		h.Set(k, v)
	}
}
