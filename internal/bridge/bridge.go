// Package bridge joins an AI app that only starts stdio servers to the
// running Countersign app: newline-delimited JSON-RPC on stdio on one side,
// the app's loopback Streamable HTTP endpoint with the local token on the
// other. If the app restarts, the bridge opens a new session and replays the
// host's initialize, so the host does not notice. When nothing answers on
// the app's port at all, a Starter starts the installed app first.
package bridge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/countersign/countersign/internal/hostwait"
	"github.com/countersign/countersign/internal/jsonrpc"
	"github.com/countersign/countersign/internal/portproof"
	"github.com/countersign/countersign/internal/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// replayID is the id of a replayed initialize; its answer is not passed on.
const replayID = `"countersign-bridge-replay"`

// DefaultDrainTimeout is how long the bridge waits for answers still in
// flight after its stdin closes: the app's default approval timeout, the
// longest a call can wait for the person.
const DefaultDrainTimeout = 5 * time.Minute

// Bridge is one stdio host connected to one server endpoint of the app.
type Bridge struct {
	URL   string // http://127.0.0.1:<port>/servers/<id>/mcp
	Token string
	In    io.Reader
	Out   io.Writer
	Log   *slog.Logger
	// Stderr gets a plain sentence for the person whenever a message from
	// the AI app cannot be delivered (AI apps show or keep a stdio server's
	// stderr); nil means only Log hears of it.
	Stderr io.Writer
	// DrainTimeout bounds how long the bridge, once the AI app has closed
	// its stdin, waits for answers to requests already sent before it
	// exits; zero means DefaultDrainTimeout.
	DrainTimeout time.Duration

	pendMu   sync.Mutex
	pending  map[string]bool // ids of the AI app's requests not yet answered
	answered chan struct{}   // signalled when one is answered
	lists    map[string]bool // ids of the AI app's tools/list requests
	tools    map[string]*mcp.Tool

	outMu    sync.Mutex
	writeErr error // the first failed write to Out; Run stops with it

	client *http.Client // proves each connection before the token goes on it
	port   int

	conn        transport.Conn
	initialize  []byte // the host's initialize request, for replay
	initialized []byte
	replayed    chan struct{} // closed when a replayed initialize is answered
}

// Run relays until the host closes stdin or ctx ends.
func (b *Bridge) Run(ctx context.Context) error {
	if b.Log == nil {
		b.Log = slog.Default()
	}
	u, err := url.Parse(b.URL)
	if err != nil {
		return fmt.Errorf("bridge: the app's address %q: %w", b.URL, err)
	}
	if b.port, err = strconv.Atoi(u.Port()); err != nil || u.Hostname() != "127.0.0.1" {
		return fmt.Errorf("bridge: the app's address %q is not 127.0.0.1 with a port", b.URL)
	}
	b.client = portproof.Client(b.port, b.Token)
	defer b.client.CloseIdleConnections()
	sc := bufio.NewScanner(b.In)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	defer func() {
		if b.conn != nil {
			b.conn.Close()
		}
	}()
	for sc.Scan() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		msg := append([]byte(nil), line...)
		m, err := jsonrpc.Parse(msg)
		if err != nil {
			b.write(jsonrpc.ErrorResponse(nil, jsonrpc.CodeParseError, "Countersign bridge: "+err.Error()))
			continue
		}
		b.handle(ctx, m)
		if err := b.failedWrite(); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("bridge: reading from the AI app: %w", err)
	}
	b.drain(ctx)
	return b.failedWrite()
}

// drain waits, once the AI app has closed stdin, until every request it
// sent is answered (the answers go to stdout as they come), the session
// ends, DrainTimeout passes or ctx ends (SIGTERM, SIGINT), whichever is
// first: an AI app that closes its side after its last request still
// gets the answer.
func (b *Bridge) drain(ctx context.Context) {
	limit := b.DrainTimeout
	if limit <= 0 {
		limit = DefaultDrainTimeout
	}
	timer := time.NewTimer(limit)
	defer timer.Stop()
	var done <-chan struct{}
	if b.conn != nil {
		done = b.conn.Done()
	}
	for {
		b.pendMu.Lock()
		n, answered := len(b.pending), b.answered
		b.pendMu.Unlock()
		if n == 0 {
			return
		}
		b.Log.Debug("stdin closed; waiting for answers still in flight", "requests", n)
		select {
		case <-answered:
		case <-done:
			return
		case <-timer.C:
			b.Log.Warn("stdin closed; giving up on answers still in flight", "requests", n)
			return
		case <-ctx.Done():
			return
		}
		if b.failedWrite() != nil {
			return
		}
	}
}

// track notes a request of the AI app as waiting for its answer.
func (b *Bridge) track(id json.RawMessage) {
	b.pendMu.Lock()
	defer b.pendMu.Unlock()
	if b.pending == nil {
		b.pending = make(map[string]bool)
		b.answered = make(chan struct{}, 1)
	}
	b.pending[string(bytes.TrimSpace(id))] = true
}

// settle notes that the request id was answered.
func (b *Bridge) settle(id json.RawMessage) {
	b.pendMu.Lock()
	defer b.pendMu.Unlock()
	key := string(bytes.TrimSpace(id))
	if !b.pending[key] {
		return
	}
	delete(b.pending, key)
	select {
	case b.answered <- struct{}{}:
	default:
	}
}

// failedWrite is the first error writing to the AI app, if any: with no
// way to answer, the bridge cannot go on.
func (b *Bridge) failedWrite() error {
	b.outMu.Lock()
	defer b.outMu.Unlock()
	return b.writeErr
}

func (b *Bridge) handle(ctx context.Context, m jsonrpc.Message) {
	isInit := m.Kind == jsonrpc.KindRequest && m.Method == "initialize"
	if isInit {
		b.initialize, b.initialized = m.Raw, nil
		if b.conn != nil {
			b.conn.Close()
			b.conn = nil
		}
	}
	if m.Kind == jsonrpc.KindNotification && m.Method == "notifications/initialized" {
		b.initialized = m.Raw
	}
	if m.Kind == jsonrpc.KindRequest {
		b.track(m.ID)
	}
	if err := b.ensureConn(ctx, !isInit); err != nil {
		b.fail(m, err)
		return
	}
	header := b.headersFor(m)
	err := b.conn.Send(ctx, m.Raw, header)
	if errors.Is(err, transport.ErrSessionLost) && !isInit {
		// The app restarted: open a new session and try once more.
		if err = b.ensureConn(ctx, true); err == nil {
			err = b.conn.Send(ctx, m.Raw, header)
		}
	}
	if err != nil {
		b.fail(m, err)
	}
}

// headersFor returns the request metadata headers a 2026-07-28 request
// carries over HTTP (Mcp-Method, Mcp-Name, and Mcp-Param-* for the tools
// the server annotated), as an HTTP client sets them: a stdio AI app sends
// none, and the app refuses a 2026-07-28 request without them. Other
// messages get none.
func (b *Bridge) headersFor(m jsonrpc.Message) http.Header {
	if m.Kind != jsonrpc.KindRequest {
		return nil
	}
	var p struct {
		Name string                     `json:"name"`
		Meta map[string]json.RawMessage `json:"_meta"`
	}
	json.Unmarshal(m.Params, &p)
	var version string
	json.Unmarshal(p.Meta[mcp.MetaKeyProtocolVersion], &version)
	std := mcp.StandardHeaders(version, mcp.MCPMethod(m.Method), m.Params)
	if std == nil {
		return nil
	}
	h := http.Header{}
	for k, v := range std {
		h.Set(k, v)
	}
	b.pendMu.Lock()
	defer b.pendMu.Unlock()
	switch m.Method {
	case "tools/list":
		if b.lists == nil {
			b.lists = make(map[string]bool)
		}
		b.lists[string(bytes.TrimSpace(m.ID))] = true
	case "tools/call":
		if tool := b.tools[p.Name]; tool != nil {
			for k, v := range mcp.GenerateParamHeaders(tool, m.Params) {
				h.Set(k, v)
			}
		}
	}
	return h
}

// learnTools keeps the tools of an answer to a 2026-07-28 tools/list, for
// their x-mcp-header annotations.
func (b *Bridge) learnTools(m jsonrpc.Message) {
	key := string(bytes.TrimSpace(m.ID))
	b.pendMu.Lock()
	defer b.pendMu.Unlock()
	if !b.lists[key] {
		return
	}
	delete(b.lists, key)
	var r mcp.ListToolsResult
	if json.Unmarshal(m.Result, &r) != nil {
		return
	}
	if b.tools == nil {
		b.tools = make(map[string]*mcp.Tool)
	}
	for i := range r.Tools {
		b.tools[r.Tools[i].Name] = &r.Tools[i]
	}
}

// ensureConn opens a session when there is none or the last one was lost,
// replaying the host's initialize when the host already sent it.
func (b *Bridge) ensureConn(ctx context.Context, replay bool) error {
	if b.conn != nil {
		select {
		case <-b.conn.Done():
			b.Log.Warn("the session with Countersign ended; opening a new one", "err", b.conn.Err())
			b.conn.Close()
			b.conn = nil
		default:
			return nil
		}
	}
	conn := transport.NewStreamableHTTP(transport.HTTPOptions{
		URL:    b.URL,
		Client: b.client,
		Header: http.Header{"Authorization": {"Bearer " + b.Token}, hostwait.ViaHeader: {string(hostwait.ViaBridge)}},
		Logger: b.Log,
	})
	b.conn = conn
	b.replayed = make(chan struct{})
	go b.pump(conn, b.replayed)
	if !replay || b.initialize == nil {
		return nil
	}
	init, _ := jsonrpc.Parse(b.initialize)
	if err := conn.Send(ctx, init.WithID(json.RawMessage(replayID)), nil); err != nil {
		return err
	}
	select {
	case <-b.replayed:
	case <-conn.Done():
		return conn.Err()
	case <-time.After(time.Minute):
		return errors.New("no answer to the replayed initialize")
	case <-ctx.Done():
		return ctx.Err()
	}
	if b.initialized != nil {
		return conn.Send(ctx, b.initialized, nil)
	}
	return nil
}

// pump writes the app's messages to stdout until the session ends.
func (b *Bridge) pump(conn transport.Conn, replayed chan struct{}) {
	for {
		select {
		case in := <-conn.Incoming():
			m, err := jsonrpc.Parse(in.Raw)
			isAnswer := err == nil && m.Kind == jsonrpc.KindResponse
			if isAnswer && string(m.ID) == replayID {
				close(replayed)
				continue
			}
			b.write(in.Raw)
			if isAnswer {
				b.learnTools(m)
				b.settle(m.ID)
			}
		case <-conn.Done():
			return
		}
	}
}

// fail tells the host why a message could not be delivered.
func (b *Bridge) fail(m jsonrpc.Message, err error) {
	msg := "Countersign could not take the message: " + err.Error()
	switch {
	case errors.Is(err, portproof.ErrNotCountersign):
		msg = fmt.Sprintf("Another program is using Countersign's port %d; Countersign is not running or could not start. "+
			"Quit that program or choose another port in Countersign's settings, then start Countersign again.", b.port)
	case refused(err):
		msg = "Countersign is not running. Start the Countersign app, then try again."
	}
	if b.Stderr != nil {
		fmt.Fprintln(b.Stderr, "countersign-bridge: "+msg)
		b.Log.Debug("delivering a message failed", "err", err)
	} else {
		b.Log.Error(msg)
	}
	if m.Kind == jsonrpc.KindRequest {
		b.write(jsonrpc.ErrorResponse(m.ID, jsonrpc.CodeConnectionClosed, msg))
		b.settle(m.ID)
	}
}

// write sends one message to the host as a line.
func (b *Bridge) write(msg []byte) {
	if bytes.ContainsAny(msg, "\r\n") {
		var c bytes.Buffer
		if json.Compact(&c, msg) == nil {
			msg = c.Bytes()
		}
	}
	b.outMu.Lock()
	defer b.outMu.Unlock()
	if b.writeErr != nil {
		return
	}
	if _, err := b.Out.Write(append(msg, '\n')); err != nil {
		b.writeErr = fmt.Errorf("bridge: writing to the AI app: %w", err)
		if b.Log != nil {
			b.Log.Error("writing to the AI app failed", "err", fmt.Sprint(err))
		}
	}
}

// Refuse answers every request read from In with an error until In ends;
// the bridge uses it when it cannot reach the app at all.
func (b *Bridge) Refuse(code int, message string) {
	sc := bufio.NewScanner(b.In)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for sc.Scan() {
		m, err := jsonrpc.Parse(bytes.TrimSpace(sc.Bytes()))
		if err == nil && m.Kind == jsonrpc.KindRequest {
			b.write(jsonrpc.ErrorResponse(m.ID, code, message))
		}
		if b.failedWrite() != nil {
			return
		}
	}
}
