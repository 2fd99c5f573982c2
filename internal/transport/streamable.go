package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/countersign/countersign/internal/jsonrpc"
	"github.com/mark3labs/mcp-go/mcp"
)

// HTTPOptions describe a remote server reached over HTTP.
type HTTPOptions struct {
	URL    string
	Client *http.Client // nil means a client with no overall timeout
	Header http.Header  // added to every request
	Logger *slog.Logger
	// MaxMessage bounds one message from the server; zero means
	// DefaultMaxMessage.
	MaxMessage int
	// HeaderTimeout bounds how long the server may take to begin answering
	// a message that is not a request, or a GET stream; zero means a
	// minute.
	HeaderTimeout time.Duration
}

func (o *HTTPOptions) defaults() {
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.HeaderTimeout <= 0 {
		o.HeaderTimeout = headerTimeout
	}
	if o.MaxMessage <= 0 {
		o.MaxMessage = DefaultMaxMessage
	}
}

// StreamableHTTP is a client session over the Streamable HTTP transport.
type StreamableHTTP struct {
	life
	o      HTTPOptions
	ctx    context.Context // ends with the connection; bounds every stream
	cancel context.CancelFunc
	in     chan Incoming
	wg     sync.WaitGroup

	mu         sync.Mutex
	sessionID  string
	version    string          // negotiated protocol version, once known
	initIDs    map[string]bool // ids of initialize requests awaiting answers
	getStarted bool
	closing    bool // Close has begun: start no more goroutines
	// responses are the open answer streams of our requests, by id, and
	// cancelled the requests whose stream we closed to cancel them.
	responses map[string]io.Closer
	cancelled map[string]bool
}

// goLocked runs f on a goroutine that Close waits for, unless Close has
// begun. c.mu must be held.
func (c *StreamableHTTP) goLocked(f func()) bool {
	if c.closing {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
	return true
}

// NewStreamableHTTP returns a connection; nothing is sent until Send.
func NewStreamableHTTP(o HTTPOptions) *StreamableHTTP {
	o.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &StreamableHTTP{
		life:      newLife(),
		o:         o,
		ctx:       ctx,
		cancel:    cancel,
		in:        make(chan Incoming, 64),
		initIDs:   make(map[string]bool),
		responses: make(map[string]io.Closer),
		cancelled: make(map[string]bool),
	}
}

// Incoming delivers the server's messages.
func (c *StreamableHTTP) Incoming() <-chan Incoming { return c.in }

// SessionID is the server's session id, empty until it sends one.
func (c *StreamableHTTP) SessionID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sessionID
}

// Send POSTs one message. A request's answer, and anything the server sends
// with it, arrives on Incoming; Send returns once the server has accepted
// the message, without waiting for the answer. Send gives up when ctx ends
// before the server begins to answer, and, for a message that is not a
// request, when the server has not begun to answer within a minute.
func (c *StreamableHTTP) Send(ctx context.Context, msg []byte, header http.Header) error {
	select {
	case <-c.done:
		return c.Err()
	default:
	}
	m, err := jsonrpc.Parse(msg)
	if err != nil {
		return err
	}
	if m.Kind == jsonrpc.KindNotification && m.Method == "notifications/cancelled" && c.cancelResponse(m.Params) {
		return nil
	}
	req, err := http.NewRequestWithContext(c.ctx, http.MethodPost, c.o.URL, bytes.NewReader(msg))
	if err != nil {
		return err
	}
	c.setHeaders(req, m, header)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if m.Kind == jsonrpc.KindRequest && m.Method == "initialize" {
		c.mu.Lock()
		c.initIDs[string(m.ID)] = true
		c.mu.Unlock()
	}
	within := time.Duration(0)
	if m.Kind != jsonrpc.KindRequest {
		within = c.o.HeaderTimeout
	}
	resp, err := do(c.o.Client, c.ctx, req, ctx, within)
	if err != nil {
		if c.ctx.Err() != nil {
			return c.Err()
		}
		return fmt.Errorf("transport: POST %s: %w", c.o.URL, err)
	}
	if sid := resp.Header.Get(mcp.HeaderSessionID); sid != "" {
		c.mu.Lock()
		if c.sessionID == "" {
			c.sessionID = sid
		}
		c.mu.Unlock()
	}
	if m.Kind == jsonrpc.KindRequest && resp.StatusCode >= 300 {
		answer, err := c.errorAnswer(resp, m.ID)
		if err != nil {
			return err
		}
		// The server refused the request with a JSON-RPC error: that is
		// its answer, not a failure to deliver it.
		c.observe(answer)
		if !c.deliver(c.in, Incoming{Raw: answer, RelatedTo: m.ID, Status: resp.StatusCode}) {
			return c.Err()
		}
		return nil
	}
	if err := c.checkStatus(resp); err != nil {
		return err
	}
	if m.Kind != jsonrpc.KindRequest {
		drain(resp)
		if m.Kind == jsonrpc.KindNotification && m.Method == "notifications/initialized" {
			c.startGetStream()
		}
		return nil
	}
	c.mu.Lock()
	started := c.goLocked(func() { c.readResponse(resp, m.ID) })
	if started {
		c.responses[string(m.ID)] = resp.Body
	}
	c.mu.Unlock()
	if !started {
		drain(resp)
		return ErrClosed
	}
	return nil
}

// setHeaders adds the session, version and per-message headers.
func (c *StreamableHTTP) setHeaders(req *http.Request, m jsonrpc.Message, extra http.Header) {
	addHeaders(req, c.o.Header, extra)
	c.mu.Lock()
	sid, version := c.sessionID, c.version
	c.mu.Unlock()
	if sid != "" {
		req.Header.Set(mcp.HeaderSessionID, sid)
	}
	if v := metaProtocolVersion(m.Params); v != "" {
		version = v
	}
	if version != "" && req.Header.Get(mcp.HeaderProtocolVersion) == "" {
		req.Header.Set(mcp.HeaderProtocolVersion, version)
	}
	if mcp.IsModernProtocol(version) && m.Method != "" {
		if req.Header.Get(mcp.HeaderMethod) == "" {
			req.Header.Set(mcp.HeaderMethod, m.Method)
		}
		if name, ok := mcp.ExtractHeaderName(mcp.MCPMethod(m.Method), m.Params); ok && req.Header.Get(mcp.HeaderName) == "" {
			if enc, ok := mcp.EncodeHeaderValue(name); ok {
				req.Header.Set(mcp.HeaderName, enc)
			}
		}
	}
}

// metaProtocolVersion reads params._meta["io.modelcontextprotocol/protocolVersion"].
func metaProtocolVersion(params json.RawMessage) string {
	if len(params) == 0 {
		return ""
	}
	var p struct {
		Meta map[string]json.RawMessage `json:"_meta"`
	}
	if json.Unmarshal(params, &p) != nil {
		return ""
	}
	var v string
	json.Unmarshal(p.Meta[mcp.MetaKeyProtocolVersion], &v)
	return v
}

// checkStatus turns an error answer into an error, ending the connection
// when the server has forgotten the session.
func (c *StreamableHTTP) checkStatus(resp *http.Response) error {
	if resp.StatusCode < 300 {
		return nil
	}
	defer drain(resp)
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode == http.StatusNotFound && c.SessionID() != "" {
		c.end(ErrSessionLost)
		c.cancel()
		return ErrSessionLost
	}
	return &HTTPStatusError{Status: resp.StatusCode, Body: string(bytes.TrimSpace(body)), Header: resp.Header}
}

// maxErrorBody bounds the body of an HTTP error answer read for a JSON-RPC
// error response.
const maxErrorBody = 1 << 20

// errorAnswer reads an HTTP error answer to request id. When its body is a
// JSON-RPC error response to id (or to no id: the server could not read
// it), it returns that response under id, every other byte as the server
// sent it. Otherwise it returns checkStatus's error.
func (c *StreamableHTTP) errorAnswer(resp *http.Response, id json.RawMessage) ([]byte, error) {
	defer drain(resp)
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody+1))
	if err == nil && len(body) <= maxErrorBody && !(resp.StatusCode == http.StatusNotFound && c.SessionID() != "") {
		ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		if ct == "application/json" {
			if answer := ErrorAnswer(body, id); answer != nil {
				return answer, nil
			}
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return nil, c.checkStatus(resp)
}

// ErrorAnswer returns body when it is one JSON-RPC error response to id,
// with an error object holding an integer code and a string message, else
// nil. An error response whose id is null or absent is given id; any other
// id, a success response, or a batch is not an answer to id.
func ErrorAnswer(body []byte, id json.RawMessage) []byte {
	m, err := jsonrpc.Parse(body)
	if errors.Is(err, jsonrpc.ErrShape) && m.ID == nil && m.Error != nil {
		// No id member: insert ours at the start of the object.
		trimmed := bytes.TrimLeft(body, " \t\r\n")
		if len(trimmed) > 0 && trimmed[0] == '{' {
			at := len(body) - len(trimmed) + 1
			withID := append(append(append([]byte(nil), body[:at]...), `"id":`+string(id)+`,`...), body[at:]...)
			m, err = jsonrpc.Parse(withID)
		}
	}
	if err != nil || m.Kind != jsonrpc.KindResponse || m.Error == nil {
		return nil
	}
	switch {
	case bytes.Equal(m.ID, id):
	case string(m.ID) == "null":
		m, err = jsonrpc.Parse(m.WithID(id))
		if err != nil {
			return nil
		}
	default:
		return nil
	}
	// Read code and message by their exact names, as the host will.
	var members map[string]json.RawMessage
	if jsonrpc.CheckUnambiguous(m.Error) != nil || json.Unmarshal(m.Error, &members) != nil {
		return nil
	}
	var code int64
	var message string
	if string(members["code"]) == "null" || string(members["message"]) == "null" ||
		json.Unmarshal(members["code"], &code) != nil || json.Unmarshal(members["message"], &message) != nil {
		return nil
	}
	return m.Raw
}

// cancelResponse handles our notifications/cancelled for a request whose
// answer stream is open: it closes that stream, which is how a 2026-07-28
// server is told, and reports whether that is all the server should get.
// A server of an earlier revision (one we initialized) expects the
// notification, and disconnecting is no cancellation to it.
func (c *StreamableHTTP) cancelResponse(params json.RawMessage) (done bool) {
	var members map[string]json.RawMessage
	if json.Unmarshal(params, &members) != nil || members["requestId"] == nil {
		return false
	}
	id := string(members["requestId"])
	c.mu.Lock()
	body := c.responses[id]
	if body != nil {
		delete(c.responses, id)
		c.cancelled[id] = true
	}
	modern := c.version == "" || mcp.IsModernProtocol(c.version)
	c.mu.Unlock()
	if body != nil {
		body.Close()
	}
	return body != nil && modern
}

// wasCancelled reports whether we closed the answer stream of request id
// to cancel it, forgetting it when done.
func (c *StreamableHTTP) wasCancelled(id json.RawMessage, forget bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	was := c.cancelled[string(id)]
	if forget {
		delete(c.cancelled, string(id))
		delete(c.responses, string(id))
	}
	return was
}

// readResponse reads the answer to request id, as one JSON body or as an
// event stream, resuming the stream if it breaks before the answer.
func (c *StreamableHTTP) readResponse(resp *http.Response, id json.RawMessage) {
	defer drain(resp)
	problem := c.readAnswer(resp, id)
	if c.wasCancelled(id, true) {
		return // we closed it: nobody waits for an answer
	}
	if problem != "" && c.ctx.Err() == nil {
		// Never leave the request hanging: answer it with the reason.
		c.o.Logger.Warn("no answer from the server", "problem", problem)
		c.deliver(c.in, Incoming{Raw: jsonrpc.ErrorResponse(id, jsonrpc.CodeConnectionClosed, "the server did not answer: "+problem), RelatedTo: id})
	}
}

// readAnswer delivers what the response carries and says what went wrong
// when it did not carry the answer to id.
func (c *StreamableHTTP) readAnswer(resp *http.Response, id json.RawMessage) string {
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		body, err := readLimited(resp.Body, c.o.MaxMessage)
		if errors.Is(err, ErrMessageTooLarge) {
			return tooLargeAnswer(c.o.MaxMessage)
		}
		if err != nil {
			return "reading its response failed: " + err.Error()
		}
		answered, trailing := c.deliverBody(body, id)
		switch {
		case answered:
			return ""
		case trailing:
			// Streamable HTTP allows one JSON object (or, before
			// 2025-06-18, one batch array) in an application/json
			// answer; several messages come as an event stream.
			return "it sent more than one message in a JSON response, which the MCP transport does not allow"
		}
		return "its response held no answer to the request"
	case "text/event-stream":
		answered, lastID, retry, err := c.readStream(resp.Body, id)
		for !answered && err == nil && lastID != "" && c.ctx.Err() == nil && !c.wasCancelled(id, false) {
			// The server closed the stream early; 2025-11-25 servers expect
			// a GET with Last-Event-ID to resume it.
			if !sleepCtx(c.ctx, retryDelay(retry)) {
				return ""
			}
			r, gerr := c.get(lastID)
			if gerr != nil {
				return "resuming its response stream failed: " + gerr.Error()
			}
			answered, lastID, retry, err = c.readStream(r.Body, id)
			drain(r)
		}
		if !answered && errors.Is(err, ErrMessageTooLarge) {
			return tooLargeAnswer(c.o.MaxMessage)
		}
		if !answered {
			return "its response stream ended without an answer"
		}
		return ""
	}
	return "it answered with content type " + strconv.Quote(ct)
}

// deliverBody delivers a JSON body holding one message or a batch, and
// reports whether it held the answer to id, and whether it held data after
// its one message.
func (c *StreamableHTTP) deliverBody(body []byte, id json.RawMessage) (answered, trailing bool) {
	msgs, _, err := jsonrpc.SplitBatch(body)
	if err != nil {
		c.o.Logger.Warn("server sent invalid JSON", "err", err)
		return false, false
	}
	for _, raw := range msgs {
		m, err := jsonrpc.Parse(raw)
		if err == nil && m.Kind == jsonrpc.KindResponse && bytes.Equal(m.ID, id) {
			answered = true
		}
		trailing = trailing || errors.Is(err, jsonrpc.ErrTrailingBytes)
		c.observe(raw)
		c.deliver(c.in, Incoming{Raw: raw, RelatedTo: id})
	}
	return answered, trailing
}

// readStream delivers the events of one stream. It reports whether the
// answer to id came, the last event id, the retry delay asked for, and
// ErrMessageTooLarge when the stream stopped at an event over the limit.
func (c *StreamableHTTP) readStream(body io.Reader, id json.RawMessage) (answered bool, lastID string, retry time.Duration, tooLarge error) {
	r := newEventReader(body, c.o.MaxMessage)
	for {
		ev, err := r.Next()
		if errors.Is(err, ErrMessageTooLarge) {
			c.o.Logger.Warn("a message from the server is over the limit: it was not passed on")
			return answered, r.LastID(), r.Retry(), err
		}
		if err != nil {
			return answered, r.LastID(), r.Retry(), nil
		}
		if ev.Name != "message" {
			continue
		}
		msgs, _, err := jsonrpc.SplitBatch(ev.Data)
		if err != nil {
			continue
		}
		for _, raw := range msgs {
			if m, err := jsonrpc.Parse(raw); err == nil && m.Kind == jsonrpc.KindResponse && id != nil && bytes.Equal(m.ID, id) {
				answered = true
			}
			c.observe(raw)
			if !c.deliver(c.in, Incoming{Raw: append([]byte(nil), raw...), RelatedTo: id}) {
				return answered, r.LastID(), r.Retry(), nil
			}
		}
	}
}

// observe notes the negotiated protocol version from an initialize answer.
func (c *StreamableHTTP) observe(raw []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.initIDs) == 0 {
		return
	}
	m, err := jsonrpc.Parse(raw)
	if err != nil || m.Kind != jsonrpc.KindResponse || !c.initIDs[string(m.ID)] {
		return
	}
	delete(c.initIDs, string(m.ID))
	var r struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	if json.Unmarshal(m.Result, &r) == nil && r.ProtocolVersion != "" {
		c.version = r.ProtocolVersion
	}
}

// startGetStream opens the stream for messages the server sends unasked.
func (c *StreamableHTTP) startGetStream() {
	c.mu.Lock()
	if c.getStarted {
		c.mu.Unlock()
		return
	}
	c.getStarted = true
	c.goLocked(c.getLoop)
	c.mu.Unlock()
}

// getLoop keeps the GET stream open until the server refuses it or the
// connection ends, reconnecting with Last-Event-ID.
func (c *StreamableHTTP) getLoop() {
	lastID := ""
	failures := 0
	for c.ctx.Err() == nil {
		resp, err := c.get(lastID)
		var se *HTTPStatusError
		switch {
		case errors.As(err, &se) && se.Status == http.StatusMethodNotAllowed:
			return // the server offers no GET stream
		case errors.Is(err, ErrSessionLost):
			return
		case err != nil:
			failures++
			if failures > 8 {
				c.o.Logger.Warn("giving up on the server's GET stream", "err", err)
				return
			}
			if !sleepCtx(c.ctx, time.Duration(failures)*time.Second) {
				return
			}
			continue
		}
		var retry time.Duration
		var tooLarge error
		_, lastID, retry, tooLarge = c.readStream(resp.Body, nil)
		drain(resp)
		if tooLarge != nil {
			// Resuming would send the same event again: count it as
			// a failure, and give up after a few.
			failures++
			if failures > 8 {
				return
			}
		} else {
			failures = 0
		}
		if !sleepCtx(c.ctx, retryDelay(retry)) {
			return
		}
	}
}

// get opens a GET event stream, resuming after lastID when set.
func (c *StreamableHTTP) get(lastID string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(c.ctx, http.MethodGet, c.o.URL, nil)
	if err != nil {
		return nil, err
	}
	c.setHeaders(req, jsonrpc.Message{}, nil)
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set(mcp.HeaderLastEventID, lastID)
	}
	resp, err := do(c.o.Client, c.ctx, req, nil, c.o.HeaderTimeout)
	if err != nil {
		return nil, err
	}
	if err := c.checkStatus(resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// Close ends the session with DELETE when the server gave one.
func (c *StreamableHTTP) Close() error {
	c.end(ErrClosed)
	if sid := c.SessionID(); sid != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodDelete, c.o.URL, nil)
		if err == nil {
			c.setHeaders(req, jsonrpc.Message{}, nil)
			if resp, err := c.o.Client.Do(req); err == nil {
				drain(resp)
			}
		}
	}
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	return nil
}

func retryDelay(d time.Duration) time.Duration {
	if d <= 0 {
		return time.Second
	}
	return min(d, time.Minute)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// drain reads a little of what is left so the connection can be reused,
// then closes the body.
func drain(resp *http.Response) {
	io.CopyN(io.Discard, resp.Body, 4096)
	resp.Body.Close()
}
