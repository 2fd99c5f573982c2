package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/hostwait"
	"github.com/countersign/countersign/internal/jsonrpc"
	"github.com/countersign/countersign/internal/phases"
	"github.com/countersign/countersign/internal/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// maxBacklog bounds the server messages kept while no host stream can take
// them.
const maxBacklog = 1000

// dialTimeout bounds opening an upstream session.
const dialTimeout = 60 * time.Second

// session joins one host session to one upstream session. The shared
// session that serves sessionless (2026-07-28) requests has an empty id.
type session struct {
	r      *Relay
	srv    *Server
	id     string
	conn   transport.Conn
	ctx    context.Context // ends with the session; its cause says why
	cancel context.CancelCauseFunc
	once   sync.Once

	mu       sync.Mutex
	nextID   int64
	inflight map[string]*request // forwarded, by upstream id
	byHostID map[string]*request // held or forwarded, by hostKey
	gets     []*stream           // open GET streams, newest last
	resume   resumables          // a host session's streams, for Last-Event-ID
	backlog  [][]byte
	client   string    // the host app's name, from initialize
	active   time.Time // when the host last did anything
	// serverReqs holds the ids (by idKey) of the server's requests
	// delivered to the host and not yet answered, oldest first in
	// serverOrder: only their answers go back, once.
	serverReqs  map[string]bool
	serverOrder []string
	// paramHeaders holds, by tool name, the Mcp-Param-* headers its
	// arguments travel in, as the server's tools/list declared them.
	paramHeaders map[string][]paramHeader
	learnedFrom  []byte // the tools/list result paramHeaders last learned from
}

// idleSince says how long the session has had no open stream and nothing
// in flight; zero while it is in use.
func (s *session) idleSince(now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.gets) > 0 || len(s.byHostID) > 0 || len(s.inflight) > 0 {
		return 0
	}
	return now.Sub(s.active)
}

// unusedSince says how long the session has had nothing in flight and no
// request from its host. A GET stream alone does not count: at a cap, a
// session whose host only listens is closed before a new one is refused
// (its host, if still there, gets 404 and opens a new session).
func (s *session) unusedSince(now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.byHostID) > 0 || len(s.inflight) > 0 {
		return 0
	}
	return now.Sub(s.active)
}

// touchLocked notes activity by the host. s.mu must be held.
func (s *session) touchLocked() { s.active = time.Now() }

// request is one host request the relay has not answered yet.
type request struct {
	hostID json.RawMessage
	upID   string // our id for it upstream
	method string
	st     *stream                 // where its answer goes
	token  json.RawMessage         // progressToken, if any
	rising rising                  // the progress the host got under token; under session.mu
	hold   context.CancelCauseFunc // set while the gate holds it
	callID string                  // the gate's id, once a tool call is approved
	// gone is set when the host's stream closed before the gate held the
	// call: it must not be held, let alone run.
	gone bool
	// cancelled is set when the host cancelled the request before the gate
	// held it or before it was forwarded: it must not be held or sent.
	cancelled bool
	// Once forwarded (see inFlightLocked): the call timeout's timer, and
	// the end of the context bounding its send.
	deadline *time.Timer
	stopSend context.CancelFunc
}

// holdStarts runs as a tool call's hold begins; a test seam for the moment
// between a request's arrival and the gate holding it.
var holdStarts = func() {}

func newSessionID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// openSession dials the upstream and starts routing its messages.
func (r *Relay) openSession(ctx context.Context, srv *Server, stateful bool) (*session, error) {
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	conn, err := srv.Dial(dctx)
	if err != nil {
		return nil, err
	}
	s := &session{
		r:        r,
		srv:      srv,
		conn:     conn,
		inflight: make(map[string]*request),
		byHostID: make(map[string]*request),
		active:   time.Now(),
	}
	s.ctx, s.cancel = context.WithCancelCause(context.Background())
	if stateful {
		s.id = newSessionID()
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		conn.Close()
		return nil, errShutdown
	}
	if stateful {
		r.sessions[s.id] = s
	} else {
		r.stateless[srv.ID] = s
	}
	r.mu.Unlock()
	go s.route()
	return s, nil
}

// route delivers upstream messages to host streams until the session ends.
func (s *session) route() {
	in := s.conn.Incoming()
	for {
		select {
		case msg := <-in:
			s.fromUpstream(msg)
		case <-s.conn.Done():
			for {
				select {
				case msg := <-in:
					s.fromUpstream(msg)
					continue
				default:
				}
				break
			}
			err := s.conn.Err()
			if errors.Is(err, transport.ErrClosed) {
				s.end(errShutdown)
			} else {
				s.end(fmt.Errorf("%w: %v", gate.ErrUpstreamLost, err))
			}
			return
		case <-s.ctx.Done():
			return
		}
	}
}

// fromUpstream routes one message from the server.
func (s *session) fromUpstream(in transport.Incoming) {
	m, err := jsonrpc.Parse(in.Raw)
	if err != nil {
		s.r.log.Warn("dropping a malformed message from the server", "server", s.srv.ID, "err", err)
		return
	}
	if m.Kind == jsonrpc.KindResponse {
		s.mu.Lock()
		req := s.inflight[string(m.ID)]
		if req != nil {
			delete(s.inflight, req.upID)
			delete(s.byHostID, s.hostKey(req.st, req.hostID))
		}
		s.mu.Unlock()
		if req == nil {
			s.r.log.Debug("dropping an answer to no pending request", "server", s.srv.ID)
			return
		}
		req.settled()
		if req.method == "tools/list" && m.Result != nil {
			s.learnParamHeaders(m.Result)
		}
		m = s.listenAnswer(req, m)
		s.pushAnswer(req, s.filterAnswer(req, m), hostStatus(in.Status, m.Error, s.id == ""))
		return
	}
	m, related := s.listenNotification(m, in.RelatedTo)
	tok := progressToken(m)
	raw, ok := s.messageForHost(m, related, tok)
	if !ok {
		return
	}
	if m.Kind == jsonrpc.KindRequest {
		s.mu.Lock()
		s.openServerRequestLocked(m.ID)
		s.mu.Unlock()
	}
	s.deliver(raw, related, tok)
}

// messageForHost returns a server request or notification as the host
// gets it: filtered (filterMessage), and a call's progress kept rising
// (progressForHost). It reports false when the host must not get it.
func (s *session) messageForHost(m jsonrpc.Message, related, tok json.RawMessage) ([]byte, bool) {
	m, params, ok := s.filterMessage(m, related, tok)
	if ok && tok != nil {
		params, ok = s.progressForHost(tok, m, params)
	}
	if !ok {
		return nil, false
	}
	if params != nil {
		return m.WithParams(params), true
	}
	return m.Raw, true
}

// progressForHost passes a server's progress notification (m, with params
// as the filter left them, nil for unchanged) through the rising sequence
// of the tool call whose token it carries: see rising. Progress for
// anything else goes as it is.
func (s *session) progressForHost(tok json.RawMessage, m jsonrpc.Message, params json.RawMessage) (json.RawMessage, bool) {
	if m.Method != "notifications/progress" {
		return params, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, req := range s.byHostID {
		if req.token != nil && string(req.token) == string(tok) {
			if params == nil {
				params = m.Params
			}
			out, ok := req.rising.server(params)
			if ok && out == nil && !bytes.Equal(params, m.Params) {
				out = params
			}
			return out, ok
		}
	}
	return params, true
}

// deliver queues a server request or notification on the best open host
// stream, or keeps it until one opens.
func (s *session) deliver(raw []byte, related, tok json.RawMessage) {
	for _, st := range s.candidates(related, tok) {
		if st.push(raw) {
			return
		}
	}
	s.mu.Lock()
	if len(s.backlog) >= maxBacklog {
		s.backlog = s.backlog[1:]
		s.r.log.Warn("no AI app stream is open: dropping the oldest waiting server message", "server", s.srv.ID)
	}
	s.backlog = append(s.backlog, raw)
	s.mu.Unlock()
}

// filterAnswer returns the server's answer to req as the host should see
// it: under the host's id, with the filter's replacement of its result or
// error and of its other members spliced in. Every other byte is the
// server's.
func (s *session) filterAnswer(req *request, m jsonrpc.Message) []byte {
	if req.callID != "" {
		phases.Mark(phases.Answered)
		defer phases.Mark(phases.Checked)
	}
	f := s.r.o.Filter
	if f == nil {
		return m.WithIDResult(req.hostID, nil)
	}
	m, ok := s.filterMembers(m, ServerMessage{Kind: jsonrpc.KindResponse, Method: req.method, CallID: req.callID, Error: m.Error != nil})
	if !ok {
		return jsonrpc.ErrorResponse(req.hostID, jsonrpc.CodeInternalError, "Countersign withheld the server's answer: it could not be checked for secrets.")
	}
	var result, rpcError json.RawMessage
	switch {
	case req.method == "tools/call" || req.method == "resources/read":
		out := f.Result(s.srv.ID, req.method, req.callID, m.Result, m.Error)
		if m.Result != nil {
			result = out
		} else {
			rpcError = out
		}
	case m.Result != nil && req.method == "tools/list":
		result = f.ToolsListed(s.srv.ID, m.Result)
	case m.Result != nil:
		result = f.ServerMessage(s.srv.ID, ServerMessage{Kind: jsonrpc.KindResponse, Method: req.method, CallID: req.callID, Payload: m.Result})
	default:
		rpcError = f.ServerMessage(s.srv.ID, ServerMessage{Kind: jsonrpc.KindResponse, Method: req.method, CallID: req.callID, Payload: m.Error, Error: true})
	}
	if result != nil && !json.Valid(result) {
		s.r.log.Warn("withholding the server's answer: the filter's replacement is not JSON", "server", s.srv.ID, "method", req.method)
		return jsonrpc.ErrorResponse(req.hostID, jsonrpc.CodeInternalError, "Countersign withheld the server's answer: it could not be checked for secrets.")
	}
	out := m.WithIDResult(req.hostID, result)
	if rpcError != nil && m.Error != nil {
		spliced, err := replaceMember(out, "error", rpcError)
		if err != nil {
			s.r.log.Warn("withholding the server's error answer: it could not be filtered", "server", s.srv.ID, "method", req.method, "err", err)
			return jsonrpc.ErrorResponse(req.hostID, jsonrpc.CodeInternalError,
				"Countersign withheld the server's error answer: it could not be checked for secrets.")
		}
		out = spliced
	}
	return out
}

// filterMessage returns a server request or notification as the host
// should see it: the message with the filter's replacement of its other
// members spliced in, and the filter's replacement of its params (nil when
// they go as they are).
// It reports false when the message must not reach the host: the filter's
// change would alter the progress token or request id the message is
// routed by. A request withheld so is refused to the server.
func (s *session) filterMessage(m jsonrpc.Message, related, tok json.RawMessage) (jsonrpc.Message, json.RawMessage, bool) {
	f := s.r.o.Filter
	if f == nil {
		return m, nil, true
	}
	callID := s.callFor(related, tok)
	m, ok := s.filterMembers(m, ServerMessage{Kind: m.Kind, Method: m.Method, CallID: callID})
	var params json.RawMessage
	if ok && m.Params != nil {
		params = f.ServerMessage(s.srv.ID, ServerMessage{Kind: m.Kind, Method: m.Method, CallID: callID, Payload: m.Params})
	}
	if ok && params == nil {
		return m, nil, true
	}
	if !ok || !json.Valid(params) || !sameRouting(m.Params, params) {
		s.r.log.Warn("withholding a server message: its filtered params are not JSON, or would change the ids it is routed by",
			"server", s.srv.ID, "method", m.Method)
		if m.Kind == jsonrpc.KindRequest {
			// Off the routing goroutine: an HTTP send can take a while.
			// It ends when the send does, at the latest with the session.
			refusal := jsonrpc.ErrorResponse(m.ID, CodeRefused,
				"Countersign withheld this request from the AI app: a secret in it could not be removed without changing its ids.")
			go s.sendBuilt(refusal, nil)
		}
		return m, nil, false
	}
	return m, params, true
}

// callFor returns the gate's id of the approved call a server message
// belongs to: the request whose stream carried it, or the held or
// forwarded call whose progress token it names.
func (s *session) callFor(related, tok json.RawMessage) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if related != nil {
		if req := s.inflight[string(related)]; req != nil {
			return req.callID
		}
	}
	if tok != nil {
		for _, req := range s.byHostID {
			if string(req.token) == string(tok) {
				return req.callID
			}
		}
	}
	return ""
}

// routing holds the members of a message's params that the host routes it
// by.
type routing struct {
	ProgressToken json.RawMessage `json:"progressToken"`
	RequestID     json.RawMessage `json:"requestId"`
	Meta          struct {
		ProgressToken json.RawMessage `json:"progressToken"`
	} `json:"_meta"`
}

// sameRouting reports whether two versions of a message's params carry the
// same progress tokens and request id, byte for byte.
func sameRouting(before, after json.RawMessage) bool {
	var a, b routing
	errA := json.Unmarshal(before, &a)
	errB := json.Unmarshal(after, &b)
	if (errA == nil) != (errB == nil) {
		return false
	}
	return bytes.Equal(a.ProgressToken, b.ProgressToken) && bytes.Equal(a.RequestID, b.RequestID) &&
		bytes.Equal(a.Meta.ProgressToken, b.Meta.ProgressToken)
}

// candidates lists the host streams that may carry a server message, best
// first: the stream of the request it belongs to (by the stream it came
// on, or by its progress token), then a GET stream, then any open request
// stream.
func (s *session) candidates(related, tok json.RawMessage) []*stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*stream
	add := func(st *stream) {
		if st != nil && st.sse {
			out = append(out, st)
		}
	}
	if related != nil {
		if req := s.inflight[string(related)]; req != nil {
			add(req.st)
		}
	}
	if tok != nil {
		for _, req := range s.byHostID {
			if string(req.token) == string(tok) {
				add(req.st)
			}
		}
	}
	for i := len(s.gets) - 1; i >= 0; i-- {
		add(s.gets[i])
	}
	for _, req := range s.byHostID {
		add(req.st)
	}
	return out
}

// hostKey keys a host request. Ids are unique within a host session, but
// sessionless requests from unrelated hosts share one upstream session, so
// there the stream the request came on is part of the key (and
// notifications/cancelled, which names no stream, finds nothing: such hosts
// cancel by closing the stream).
func (s *session) hostKey(st *stream, id json.RawMessage) string {
	if s.id != "" {
		return string(id)
	}
	return fmt.Sprintf("%p %s", st, id)
}

// progressToken returns params.progressToken of a progress notification.
func progressToken(m jsonrpc.Message) json.RawMessage {
	if m.Method != "notifications/progress" {
		return nil
	}
	mm, err := jsonrpc.Members(m.Params, "progressToken")
	if err != nil {
		return nil
	}
	return mm["progressToken"]
}

// fromHost handles one message from the host that arrived on a POST whose
// answers go to st.
func (s *session) fromHost(m jsonrpc.Message, st *stream, header http.Header) {
	s.mu.Lock()
	s.touchLocked()
	s.mu.Unlock()
	switch m.Kind {
	case jsonrpc.KindResponse:
		if !s.takeServerRequest(m.ID) {
			s.drop(m, reasonNoRequest)
			return
		}
		s.send(m, header)
	case jsonrpc.KindNotification:
		if !clientNotifications[m.Method] {
			s.drop(m, reasonNotification)
			return
		}
		if m.Method == "notifications/cancelled" {
			s.cancelRequest(m, header)
			return
		}
		s.send(m, header)
	case jsonrpc.KindRequest:
		req := &request{hostID: m.ID, method: m.Method, st: st}
		s.mu.Lock()
		if m.Method == "initialize" {
			s.client = clientName(m.Params, true)
		}
		s.nextID++
		req.upID = strconv.FormatInt(s.nextID, 10)
		s.byHostID[s.hostKey(st, m.ID)] = req
		s.mu.Unlock()
		if m.Method == "tools/call" {
			go s.hold(m, req, header)
			return
		}
		if deny := s.checkResource(m); deny != "" {
			s.answer(req, jsonrpc.ErrorResponse(req.hostID, CodeRefused, deny))
			return
		}
		s.forward(m, req, header)
	}
}

// CodeRefused is the JSON-RPC error code of a request Countersign refused
// by policy.
const CodeRefused = -32001

// checkResource asks the filter about resources/read and
// resources/subscribe; a non-empty answer refuses the request.
func (s *session) checkResource(m jsonrpc.Message) string {
	if s.r.o.Filter == nil || (m.Method != "resources/read" && m.Method != "resources/subscribe") {
		return ""
	}
	if err := jsonrpc.CheckUnambiguous(m.Params); err != nil {
		return "Countersign refused this request: its parameters repeat a name or use two names that differ only in case."
	}
	if _, err := jsonrpc.Members(m.Params, "uri"); errors.Is(err, jsonrpc.ErrFoldedName) {
		return "Countersign refused this request: its parameters use a name that differs from uri only in case, which servers read differently."
	}
	uri, ok := memberString(m.Params, "uri")
	if !ok || uri == "" {
		return "Countersign refused this request: it names no resource URI."
	}
	return s.r.o.Filter.CheckResource(s.srv.ID, m.Method, uri)
}

// send forwards a message that needs no answer, with the headers derived
// from it.
func (s *session) send(m jsonrpc.Message, header http.Header) {
	if err := s.conn.Send(s.ctx, m.Raw, s.upstreamHeaders(header, m)); err != nil {
		s.r.log.Warn("forwarding a message to the server failed", "server", s.srv.ID, "err", err)
	}
}

// sendBuilt sends a message the relay built or edited; it is parsed once,
// here, for its headers.
func (s *session) sendBuilt(raw []byte, header http.Header) {
	m, err := jsonrpc.Parse(raw)
	if err != nil {
		s.r.log.Warn("not sending a message the relay could not read back", "server", s.srv.ID, "err", err)
		return
	}
	s.send(m, header)
}

// forward sends a request upstream under its upstream id.
func (s *session) forward(m jsonrpc.Message, req *request, header http.Header) {
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		// Through the filter, which records the end of an approved call
		// that was never sent.
		s.answerForwarded(req, s.lostError(req, context.Cause(s.ctx)))
		return
	}
	if req.cancelled {
		s.mu.Unlock()
		s.answerForwarded(req, jsonrpc.ErrorResponse(req.hostID, -32800, "Request cancelled by the AI app before it was sent"))
		return
	}
	ctx := s.inFlightLocked(req)
	callID := req.callID
	s.mu.Unlock()
	f := s.r.o.Filter
	if f != nil && callID != "" {
		f.Forwarded(s.srv.ID, callID)
	}
	if callID != "" {
		phases.Mark(phases.Sending)
	}
	err := s.conn.Send(ctx, m.WithID(json.RawMessage(req.upID)), s.upstreamHeaders(header, m))
	if callID != "" {
		phases.Mark(phases.Sent)
	}
	if err != nil {
		s.mu.Lock()
		_, still := s.inflight[req.upID]
		delete(s.inflight, req.upID)
		s.mu.Unlock()
		if still {
			req.settled()
			msg := jsonrpc.ErrorResponse(req.hostID, jsonrpc.CodeConnectionClosed,
				fmt.Sprintf("Countersign could not send the request to %s: %v", s.srv.displayName(), err))
			s.answerForwarded(req, msg)
		}
	}
}

// answerForwarded sends the relay's own answer to a request that was
// forwarded but got no answer from the server, or to an approved call it
// could not send. It goes through the filter like a server's answer: the
// filter records the end of a tool call, and the message may quote what
// the server or its connection said.
func (s *session) answerForwarded(req *request, msg []byte) {
	if s.r.o.Filter != nil {
		if m, err := jsonrpc.Parse(msg); err == nil {
			msg = s.filterAnswer(req, m)
		}
	}
	s.mu.Lock()
	delete(s.byHostID, s.hostKey(req.st, req.hostID))
	s.mu.Unlock()
	s.pushAnswer(req, msg, 0)
}

// pushAnswer hands the answer to a forwarded request, or to an approved
// call, to the host's stream, which tells the filter whether it reached
// the host (see stream.pushAnswer): the filter records the end of a tool
// call only then.
func (s *session) pushAnswer(req *request, msg []byte, status int) {
	var told func(bool)
	if f := s.r.o.Filter; f != nil && req.callID != "" {
		told = func(delivered bool) {
			if !delivered {
				s.r.log.Warn("the answer to a tool call could not be handed to the AI app: it had gone", "server", s.srv.ID, "call", req.callID)
			}
			f.Delivered(s.srv.ID, req.callID, delivered)
		}
	}
	if !req.st.pushAnswer(msg, req.hostID, status, told) && told == nil {
		// Only a closed stream refuses an answer: nobody is left to tell.
		s.r.log.Warn("the server's answer came after the AI app had closed its request", "server", s.srv.ID, "method", req.method)
	}
}

// answer sends the relay's own answer to a host request that was neither
// forwarded nor approved.
func (s *session) answer(req *request, msg []byte) {
	s.mu.Lock()
	delete(s.byHostID, s.hostKey(req.st, req.hostID))
	s.mu.Unlock()
	req.st.pushAnswer(msg, req.hostID, 0, nil)
}

// hold waits for the person's decision on a tools/call, keeping the host
// informed, then forwards or denies it.
func (s *session) hold(m jsonrpc.Message, req *request, header http.Header) {
	holdStarts()
	phases.Mark(phases.Held)
	// Read by exact name, as servers do; a name they could read
	// differently is refused.
	p, err := readCall(m.Params)
	if err != nil {
		s.r.log.Warn("refusing a tool call whose parameters cannot be read one way", "server", s.srv.ID, "err", err)
		s.answer(req, jsonrpc.ErrorResponse(req.hostID, jsonrpc.CodeInvalidParams, callRefusal(err)))
		return
	}
	// What the person reviews must be what the server runs: refuse params
	// that servers could read differently.
	if err := jsonrpc.CheckUnambiguous(m.Params); err != nil {
		s.r.log.Warn("refusing an ambiguous tool call", "server", s.srv.ID, "err", err)
		s.answer(req, jsonrpc.ErrorResponse(req.hostID, jsonrpc.CodeInvalidParams,
			"Countersign refused this call: its parameters repeat a name or use two names that differ only in case"))
		return
	}
	ctx, cancel := context.WithCancelCause(s.ctx)
	defer cancel(nil)
	s.mu.Lock()
	req.hold = cancel
	req.token = p.Meta.ProgressToken
	client := s.client
	gone, cancelled := req.gone, req.cancelled
	s.mu.Unlock()
	switch {
	case gone:
		// The host left before the call was held: streamClosed found no
		// hold to cancel. The gate ends it at once, as disconnected.
		cancel(gate.ErrHostDisconnected)
	case cancelled:
		// Likewise for the host's notifications/cancelled.
		cancel(gate.ErrHostCancelled)
	}
	if client == "" {
		client = clientName(m.Params, false)
	}

	waiting, reported := make(chan struct{}), make(chan struct{})
	if req.token != nil {
		go func() { s.reportWaiting(req, waiting); close(reported) }()
	} else {
		close(reported)
	}
	v := s.r.o.Gate.Submit(ctx, gate.Call{
		Server:         s.srv.ID,
		ServerName:     s.srv.displayName(),
		Tool:           p.Name,
		Arguments:      p.Arguments,
		Client:         client,
		InputResponses: p.InputResponses,
		RequestState:   p.RequestState,
		HostBudget:     s.r.hostBudget(client, req.st, req.token != nil),
	})
	close(waiting)
	<-reported // so the server's progress comes after the last of ours
	s.mu.Lock()
	req.hold = nil
	req.rising.serverStarts()
	s.mu.Unlock()

	if !v.Approved() {
		s.r.log.Info("tool call not run", "server", s.srv.ID, "tool", p.Name, "outcome", v.Outcome.String())
		s.answer(req, deniedResult(req.hostID, v.Message()))
		return
	}
	s.r.log.Info("tool call approved", "server", s.srv.ID, "tool", p.Name)
	s.mu.Lock()
	req.callID = v.CallID
	s.mu.Unlock()
	if v.Arguments != nil {
		if err := checkEdited(v.Arguments); err != nil {
			s.r.log.Warn("refusing approved edited arguments", "server", s.srv.ID, "tool", p.Name, "err", err)
			s.answerForwarded(req, deniedResult(req.hostID, "Not run: Countersign could not use the arguments the user edited."))
			return
		}
		edited, err := setMember(m.Params, "arguments", v.Arguments)
		if err != nil {
			s.answerForwarded(req, jsonrpc.ErrorResponse(req.hostID, jsonrpc.CodeInternalError, err.Error()))
			return
		}
		// The edited message is new: it is parsed once, here.
		if m, err = jsonrpc.Parse(m.WithParams(edited)); err != nil {
			s.answerForwarded(req, jsonrpc.ErrorResponse(req.hostID, jsonrpc.CodeInternalError, err.Error()))
			return
		}
	}
	s.forward(m, req, header)
}

// hostBudget is how long Countersign may hold a tool call from the AI app
// named client before it must answer, so that the answer arrives before
// the AI app gives up on its own (see package hostwait); zero: as long as
// the gate holds it.
func (r *Relay) hostBudget(client string, st *stream, progress bool) time.Duration {
	t := r.hostWait.Load()
	if t == nil || st == nil {
		return 0
	}
	return hostwait.AnswerBy(t.Budget(client, st.via, progress))
}

// reportWaiting sends "waiting for approval" progress while a call is held,
// at once and then at every keep-alive interval.
func (s *session) reportWaiting(req *request, done <-chan struct{}) {
	t := time.NewTicker(s.r.o.KeepAlive)
	defer t.Stop()
	start := time.Now()
	for {
		s.mu.Lock()
		progress := req.rising.next(time.Since(start))
		s.mu.Unlock()
		n, err := jsonrpc.Notification("notifications/progress", map[string]any{
			"progressToken": req.token,
			"progress":      progress,
			"message":       "Waiting for approval in Countersign",
		})
		if err == nil {
			req.st.push(n)
		}
		select {
		case <-t.C:
		case <-done:
			return
		}
	}
}

// deniedResult is a tool result telling the model the call did not run.
func deniedResult(id json.RawMessage, message string) []byte {
	b, _ := jsonrpc.Response(id, mcp.NewToolResultError(message))
	return b
}

// cancelRequest handles notifications/cancelled from the host: a held call
// is denied, a forwarded one is cancelled upstream under its upstream id.
func (s *session) cancelRequest(m jsonrpc.Message, header http.Header) {
	var requestID json.RawMessage
	if mm, err := jsonrpc.Members(m.Params, "requestId"); err == nil {
		requestID = mm["requestId"]
	}
	s.mu.Lock()
	req := s.byHostID[s.hostKey(nil, requestID)]
	var hold context.CancelCauseFunc
	forwarded := false
	if req != nil {
		hold = req.hold
		if _, ok := s.inflight[req.upID]; ok {
			forwarded = true
			delete(s.inflight, req.upID)
			delete(s.byHostID, s.hostKey(req.st, req.hostID))
			req.settled()
		} else if hold == nil {
			// Not held yet, or decided and not sent yet: hold and
			// forward see it.
			req.cancelled = true
		}
	}
	s.mu.Unlock()
	switch {
	case req == nil:
		// Already answered, or never sent: upstream knows it by no id, and
		// passing the host's id on could cancel another request.
	case hold != nil:
		hold(gate.ErrHostCancelled)
	case forwarded:
		params, err := setMember(m.Params, "requestId", json.RawMessage(req.upID))
		if err == nil {
			s.sendBuilt(m.WithParams(params), header)
		}
		// The host ignores any answer now; this one ends its stream.
		s.answerForwarded(req, jsonrpc.ErrorResponse(req.hostID, -32800, "Request cancelled"))
	}
}

// streamClosed is called when a host stream's response ended. Calls still
// held for it are denied: the host went away. Requests forwarded on it are
// cancelled (see hostLeft).
func (s *session) streamClosed(st *stream, unread [][]byte) {
	s.mu.Lock()
	var holds []context.CancelCauseFunc
	for _, req := range s.byHostID {
		if req.st != st {
			continue
		}
		_, forwarded := s.inflight[req.upID]
		if req.hold != nil {
			holds = append(holds, req.hold)
		} else if !forwarded && req.method == "tools/call" {
			req.gone = true // not held yet: hold sees it
		}
	}
	forwarded := s.forwardedOnLocked(st)
	for i, g := range s.gets {
		if g == st {
			s.gets = append(s.gets[:i], s.gets[i+1:]...)
			break
		}
	}
	s.touchLocked()
	s.mu.Unlock()
	for _, h := range holds {
		h(gate.ErrHostDisconnected)
	}
	s.hostLeft(st, forwarded)
	// What the host did not read was filtered on its way in: route it
	// again as it is.
	for _, raw := range unread {
		if m, err := jsonrpc.Parse(raw); err == nil && m.Kind != jsonrpc.KindResponse {
			s.deliver(raw, nil, progressToken(m))
		}
	}
}

// addGet registers a GET stream and hands it the backlog.
func (s *session) addGet(st *stream) {
	s.mu.Lock()
	s.gets = append(s.gets, st)
	backlog := s.backlog
	s.backlog = nil
	s.mu.Unlock()
	for _, raw := range backlog {
		st.push(raw)
	}
}

// end finishes the session: waiting calls are denied with cause, requests
// in flight get an error, and the upstream session is closed.
func (s *session) end(cause error) {
	s.once.Do(func() {
		s.r.forget(s) // first: a host told of the loss must find the session gone
		s.mu.Lock()
		s.cancel(cause)
		pending := make([]*request, 0, len(s.inflight))
		for _, req := range s.inflight {
			pending = append(pending, req)
		}
		s.inflight = map[string]*request{}
		s.mu.Unlock()
		for _, req := range pending {
			req.settled()
			s.answerForwarded(req, s.lostError(req, cause))
		}
		s.conn.Close()
		// A stream the host broke off can no longer be resumed: the
		// answers it holds will not reach the host.
		for _, st := range s.resume.all() {
			if unread, ok := st.closeIfDetached(); ok {
				s.streamClosed(st, unread)
			}
		}
	})
}

func (s *session) lostError(req *request, cause error) []byte {
	return jsonrpc.ErrorResponse(req.hostID, jsonrpc.CodeConnectionClosed,
		fmt.Sprintf("Countersign ended the session with %s: %v", s.srv.displayName(), cause))
}

// forget removes a session from the relay's maps.
func (r *Relay) forget(s *session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.id != "" {
		if r.sessions[s.id] == s {
			delete(r.sessions, s.id)
		}
	} else if r.stateless[s.srv.ID] == s {
		delete(r.stateless, s.srv.ID)
	}
}

func (srv *Server) displayName() string {
	if srv.Name != "" {
		return srv.Name
	}
	return srv.ID
}

// clientName reads the host app's name from initialize params, or from a
// sessionless request's _meta.
func clientName(params json.RawMessage, initialize bool) string {
	type impl struct {
		Name  string `json:"name"`
		Title string `json:"title"`
	}
	var info impl
	if initialize {
		var p struct {
			ClientInfo impl `json:"clientInfo"`
		}
		json.Unmarshal(params, &p)
		info = p.ClientInfo
	} else {
		var p struct {
			Meta map[string]json.RawMessage `json:"_meta"`
		}
		json.Unmarshal(params, &p)
		json.Unmarshal(p.Meta[mcp.MetaKeyClientInfo], &info)
	}
	if info.Title != "" {
		return info.Title
	}
	return info.Name
}

// setMember returns obj with one member replaced; the others keep their
// bytes.
func setMember(obj json.RawMessage, key string, value json.RawMessage) (json.RawMessage, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(obj, &members); err != nil {
		return nil, fmt.Errorf("relay: params are not an object: %w", err)
	}
	members[key] = value
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(members); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
