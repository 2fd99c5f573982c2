package bridge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/portproof/prooftest"
	"github.com/countersign/countersign/internal/relay"
	"github.com/countersign/countersign/internal/testenv"
	"github.com/countersign/countersign/internal/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

const token = "abababababababababababababababababababababababababababababababab"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// app is a stand-in for the running Countersign app: a real relay with an
// approving person, in front of a real mcp-go server, that can restart.
type app struct {
	t       *testing.T
	port    int
	handler atomic.Pointer[relay.Relay]
	hs      *httptest.Server
	up      string
	gate    *gate.Queue
}

func startApp(t *testing.T) *app {
	t.Helper()
	s := server.NewMCPServer("up", "1")
	s.AddTool(mcp.NewTool("echo", mcp.WithString("message")), func(_ context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("echo: " + r.GetString("message", "")), nil
	})
	s.AddTool(mcp.NewToolWithRawSchema("sql", "", json.RawMessage(`{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"}}}`)),
		func(_ context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText("sql in " + r.GetString("region", "")), nil
		})
	s.AddTool(mcp.NewTool("slow"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return mcp.NewToolResultText("slow: done"), nil
	})
	up := httptest.NewServer(server.NewStreamableHTTPServer(s))
	t.Cleanup(up.Close)
	a := &app{t: t, up: up.URL + "/mcp"}
	a.hs = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.handler.Load().ServeHTTP(w, r)
	}))
	a.port = a.hs.Listener.Addr().(*net.TCPAddr).Port
	a.restart()
	a.hs.Start()
	t.Cleanup(func() {
		a.hs.CloseClientConnections()
		a.hs.Close()
		a.handler.Load().Close()
	})
	return a
}

// restart replaces the relay, as when the app is quit and started again:
// every session it had is gone.
func (a *app) restart() {
	if a.gate != nil {
		a.gate.Close()
	}
	g := gate.New(gate.Options{})
	sub := g.Subscribe()
	go func() {
		for ev := range sub.Events() {
			if ev.Kind == gate.EventAdded {
				g.Decide(ev.Call.ID, gate.Decision{Approve: true})
			}
		}
	}()
	r, err := relay.New(relay.Options{
		Servers: []relay.Server{{ID: "up", Dial: func(context.Context) (transport.Conn, error) {
			return transport.NewStreamableHTTP(transport.HTTPOptions{URL: a.up}), nil
		}}},
		Gate: g, Token: token, Port: a.port, Logger: quiet,
	})
	if err != nil {
		a.t.Fatal(err)
	}
	if old := a.handler.Swap(r); old != nil {
		old.Close()
	}
	a.gate = g
}

// host is the AI app's side of the bridge's stdio.
type host struct {
	t   *testing.T
	in  *io.PipeWriter
	out *bufio.Scanner
}

func startBridge(t *testing.T, url string) *host {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	b := &Bridge{URL: url, Token: token, In: inR, Out: outW, Log: quiet}
	go func() {
		b.Run(context.Background())
		outW.Close()
	}()
	t.Cleanup(func() { inW.Close() })
	return &host{t: t, in: inW, out: bufio.NewScanner(outR)}
}

func (h *host) send(msg string) {
	h.t.Helper()
	if _, err := io.WriteString(h.in, msg+"\n"); err != nil {
		h.t.Fatal(err)
	}
}

// recv returns the next line the bridge writes.
func (h *host) recv() string {
	h.t.Helper()
	got := make(chan string, 1)
	go func() {
		if h.out.Scan() {
			got <- h.out.Text()
		} else {
			got <- ""
		}
	}()
	select {
	case line := <-got:
		return line
	case <-time.After(10 * time.Second):
		h.t.Fatal("the bridge wrote nothing")
		return ""
	}
}

const initMsg = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"Claude","version":"1"}}}`

func TestBridgeRelaysAndSurvivesAnAppRestart(t *testing.T) {
	a := startApp(t)
	h := startBridge(t, "http://127.0.0.1:"+strconv.Itoa(a.port)+"/servers/up/mcp")
	h.send(initMsg)
	if got := h.recv(); !strings.Contains(got, `"id":1`) || !strings.Contains(got, `"protocolVersion"`) {
		t.Fatalf("initialize answer: %s", got)
	}
	h.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	h.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"one"}}}`)
	if got := h.recv(); !strings.Contains(got, `"id":2`) || !strings.Contains(got, "echo: one") {
		t.Fatalf("first call: %s", got)
	}

	a.restart()
	h.send(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"message":"two"}}}`)
	got := h.recv()
	if !strings.Contains(got, `"id":3`) || !strings.Contains(got, "echo: two") {
		t.Fatalf("call after restart: %s", got)
	}
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(got), &m) != nil {
		t.Fatalf("not one JSON message per line: %s", got)
	}
}

func TestBridgeSaysWhenTheAppIsNotRunning(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens there now
	h := startBridge(t, "http://127.0.0.1:"+strconv.Itoa(port)+"/servers/up/mcp")
	h.send(initMsg)
	got := h.recv()
	if !strings.Contains(got, `"id":1`) || !strings.Contains(got, "Countersign is not running") {
		t.Fatalf("got %s", got)
	}
	h.send(`not json`)
	if got := h.recv(); !strings.Contains(got, `"code":-32700`) {
		t.Fatalf("garbage got %s", got)
	}
}

func TestRefuseAnswersEveryRequest(t *testing.T) {
	var out strings.Builder
	b := &Bridge{In: strings.NewReader(initMsg + "\n" + `{"jsonrpc":"2.0","method":"notifications/initialized"}` + "\n" + `{"jsonrpc":"2.0","id":"x","method":"tools/list"}` + "\n"), Out: &out}
	b.Refuse(-32000, "no settings")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"id":1`) || !strings.Contains(lines[1], `"id":"x"`) || !strings.Contains(lines[1], "no settings") {
		t.Fatalf("got %q", lines)
	}
}

// Another local user can bind Countersign's port while the app is not
// running. Whatever it answers, it must never receive the token, and the
// person is told in plain words what is wrong.
func TestBridgeNeverSendsTheTokenToAnotherProgramOnThePort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := prooftest.Record(ln)
	// It plays an MCP server as well as it can without the token.
	other := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Mcp-Session-Id", "s1")
		w.Header().Set("Countersign-Proof", "AAAA")
		io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"x","version":"1"}}}`)
	})}
	go other.Serve(rec)
	t.Cleanup(func() { other.Close() })
	port := ln.Addr().(*net.TCPAddr).Port

	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	var stderr testenv.LockedBuffer
	b := &Bridge{URL: "http://127.0.0.1:" + strconv.Itoa(port) + "/servers/up/mcp", Token: token, In: inR, Out: outW, Log: quiet, Stderr: &stderr}
	go func() {
		b.Run(context.Background())
		outW.Close()
	}()
	t.Cleanup(func() { inW.Close() })
	h := &host{t: t, in: inW, out: bufio.NewScanner(outR)}
	h.send(initMsg)
	got := h.recv()
	if seen := rec.Bytes(); bytes.Contains(seen, []byte(token)) {
		t.Fatalf("the other program received the token:\n%s", seen)
	}
	want := "Another program is using Countersign's port " + strconv.Itoa(port) + "; Countersign is not running or could not start."
	if !strings.Contains(got, `"id":1`) || !strings.Contains(got, `"error"`) || !strings.Contains(got, want) {
		t.Fatalf("the AI app got %s, want an error saying %q", got, want)
	}
	if !strings.Contains(stderr.String(), want) {
		t.Fatalf("stderr has %q, want %q", stderr.String(), want)
	}
	h.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	h.send(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
	if got := h.recv(); !strings.Contains(got, `"id":2`) || !strings.Contains(got, want) {
		t.Fatalf("second request got %s", got)
	}
	seen := rec.Bytes()
	if bytes.Contains(seen, []byte(token)) {
		t.Fatalf("the other program received the token:\n%s", seen)
	}
	if !bytes.Contains(seen, []byte("Countersign-Challenge")) {
		t.Fatalf("the bridge did not ask who listens:\n%s", seen)
	}
}

type brokenPipe struct{}

func (brokenPipe) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

type failingReader struct{ r io.Reader }

func (f *failingReader) Read(p []byte) (int, error) {
	if n, err := f.r.Read(p); err != io.EOF {
		return n, err
	}
	return 0, errors.New("stdin went away")
}

// When the bridge can no longer talk to the AI app it stops with an error,
// so that countersign-bridge exits non-zero, rather than reporting a clean
// end.
func TestRunFailsWhenTheAIAppCannotBeReached(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	url := "http://127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port) + "/servers/up/mcp"
	ln.Close()

	t.Run("stdout fails", func(t *testing.T) {
		in := strings.NewReader(initMsg + "\n" + `{"jsonrpc":"2.0","id":2,"method":"tools/list"}` + "\n")
		b := &Bridge{URL: url, Token: token, In: in, Out: brokenPipe{}, Log: quiet}
		if err := b.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "broken pipe") {
			t.Fatalf("Run = %v, want the write error", err)
		}
	})
	t.Run("stdin fails", func(t *testing.T) {
		b := &Bridge{URL: url, Token: token, In: &failingReader{strings.NewReader(initMsg + "\n")}, Out: io.Discard, Log: quiet}
		if err := b.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "stdin went away") {
			t.Fatalf("Run = %v, want the read error", err)
		}
	})
	t.Run("stdin ends", func(t *testing.T) {
		b := &Bridge{URL: url, Token: token, In: strings.NewReader(initMsg + "\n"), Out: io.Discard, Log: quiet}
		if err := b.Run(context.Background()); err != nil {
			t.Fatalf("Run = %v, want nil when the AI app closes stdin", err)
		}
	})
}

// TestBridgeAnswersInFlightAfterStdinCloses: an AI app (supergateway) that
// sends a request and closes stdin still gets the answer on stdout before
// the bridge exits.
func TestBridgeAnswersInFlightAfterStdinCloses(t *testing.T) {
	a := startApp(t)
	h := startBridge(t, "http://127.0.0.1:"+strconv.Itoa(a.port)+"/servers/up/mcp")
	h.send(initMsg)
	if got := h.recv(); !strings.Contains(got, `"id":1`) {
		t.Fatalf("initialize answer: %s", got)
	}
	h.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	h.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"slow","arguments":{}}}`)
	h.in.Close()
	if got := h.recv(); !strings.Contains(got, `"id":2`) || !strings.Contains(got, "slow: done") {
		t.Fatalf("answer after stdin closed: %q", got)
	}
}

// TestBridgeDrainEndsOnSignal: waiting for answers after stdin closes ends
// as soon as ctx does (SIGTERM, SIGINT), and it is bounded by DrainTimeout.
func TestBridgeDrainEndsOnSignal(t *testing.T) {
	a := startApp(t)
	a.gate.Close() // nobody answers: the call waits for the person
	g := gate.New(gate.Options{})
	t.Cleanup(g.Close)
	for _, tt := range []struct {
		name   string
		cancel bool
		limit  time.Duration
	}{{"signal", true, time.Hour}, {"timeout", false, 200 * time.Millisecond}} {
		t.Run(tt.name, func(t *testing.T) {
			r, err := relay.New(relay.Options{
				Servers: []relay.Server{{ID: "up", Dial: func(context.Context) (transport.Conn, error) {
					return transport.NewStreamableHTTP(transport.HTTPOptions{URL: a.up}), nil
				}}},
				Gate: g, Token: token, Port: a.port, Logger: quiet,
			})
			if err != nil {
				t.Fatal(err)
			}
			if old := a.handler.Swap(r); old != nil {
				old.Close()
			}
			in := strings.NewReader(initMsg + "\n" + `{"jsonrpc":"2.0","method":"notifications/initialized"}` + "\n" +
				`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{}}}` + "\n")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			b := &Bridge{URL: "http://127.0.0.1:" + strconv.Itoa(a.port) + "/servers/up/mcp", Token: token,
				In: in, Out: &testenv.LockedBuffer{}, Log: quiet, DrainTimeout: tt.limit}
			done := make(chan error, 1)
			start := time.Now()
			go func() { done <- b.Run(ctx) }()
			if tt.cancel {
				time.Sleep(300 * time.Millisecond)
				cancel()
			}
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("the bridge did not stop")
			}
			if !tt.cancel && time.Since(start) < tt.limit {
				t.Errorf("the bridge stopped after %v, before the call was answered or %v passed", time.Since(start), tt.limit)
			}
		})
	}
}

// TestBridgeSendsTheHeadersOf2026Requests: a stdio AI app speaking
// 2026-07-28 sends no HTTP headers; the bridge sets the Mcp-Method and
// Mcp-Name the app requires of such a request, and the Mcp-Param-* of a
// tool the server annotated, so the call is answered.
func TestBridgeSendsTheHeadersOf2026Requests(t *testing.T) {
	a := startApp(t)
	h := startBridge(t, "http://127.0.0.1:"+strconv.Itoa(a.port)+"/servers/up/mcp")
	meta := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"modern","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}`
	h.send(`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{` + meta + `}}`)
	if got := h.recv(); !strings.Contains(got, `"id":1`) || !strings.Contains(got, `"echo"`) {
		t.Fatalf("tools/list: %s", got)
	}
	h.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"},` + meta + `}}`)
	if got := h.recv(); !strings.Contains(got, `"id":2`) || !strings.Contains(got, "echo: hi") {
		t.Fatalf("tools/call: %s", got)
	}
	// A tool with an x-mcp-header annotation: the call needs Mcp-Param-Region.
	h.send(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"sql","arguments":{"region":"eu"},` + meta + `}}`)
	if got := h.recv(); !strings.Contains(got, `"id":3`) || !strings.Contains(got, "sql in eu") {
		t.Fatalf("annotated tools/call: %s", got)
	}
}
