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
	"time"

	"github.com/countersign/countersign/internal/hostwait"
	"github.com/countersign/countersign/internal/jsonrpc"
	"github.com/mark3labs/mcp-go/mcp"
)

// handlePost takes messages from the host and answers its requests, as an
// event stream when the host accepts one, else as one JSON body.
func (r *Relay) handlePost(w http.ResponseWriter, req *http.Request, srv *Server) {
	body, release, ok := r.readBody(w, req)
	if !ok {
		return
	}
	defer release()
	raws, isBatch, err := jsonrpc.SplitBatch(body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, jsonrpc.ErrorResponse(nil, jsonrpc.CodeParseError, "parse error: "+err.Error()))
		return
	}
	if len(raws) > maxBatch {
		writeJSON(w, http.StatusBadRequest, jsonrpc.ErrorResponse(nil, jsonrpc.CodeInvalidRequest,
			fmt.Sprintf("invalid request: Countersign accepts batches of up to %d messages", maxBatch)))
		return
	}
	msgs := make([]jsonrpc.Message, len(raws))
	hasInit := false
	client := "" // the AI app's name, from an initialize
	var ids [][]byte
	for i, raw := range raws {
		m, err := jsonrpc.Parse(raw)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, jsonrpc.ErrorResponse(nil, jsonrpc.CodeInvalidRequest, "invalid request: "+err.Error()))
			return
		}
		msgs[i] = m
		if m.Kind == jsonrpc.KindRequest {
			ids = append(ids, m.ID)
			if m.Method == "initialize" {
				hasInit = true
				client = clientName(m.Params, true)
			}
		}
	}

	if r.refuseHeaders(w, req, srv, msgs, checkHostHeaders) {
		return
	}
	s, status, err := r.sessionFor(req, srv, hasInit, client)
	if err != nil {
		if status != http.StatusOK {
			httpError(w, status, err.Error())
			return
		}
		// The host asked for something the relay cannot reach: answer each
		// request with the reason.
		var out [][]byte
		msg := "Countersign " + err.Error()
		for _, m := range msgs {
			if m.Kind == jsonrpc.KindRequest {
				out = append(out, r.filterError(srv.ID, m.Method, jsonrpc.ErrorResponse(m.ID, jsonrpc.CodeConnectionClosed, msg)))
			}
		}
		if len(out) == 0 {
			writeJSON(w, http.StatusBadGateway, r.filterError(srv.ID, "", jsonrpc.ErrorResponse(nil, jsonrpc.CodeConnectionClosed, msg)))
			return
		}
		writeJSON(w, http.StatusOK, joinBody(out, isBatch))
		return
	}

	if r.refuseHeaders(w, req, srv, msgs, s.checkParamHeaders) {
		return
	}
	header := forwardHeaders(req.Header)
	if len(ids) == 0 {
		for _, m := range msgs {
			s.fromHost(m, nil, header)
		}
		w.WriteHeader(http.StatusAccepted)
		return
	}
	st := newStream(accepts(req, "text/event-stream"))
	st.call = len(msgs) == 1 && msgs[0].Method == "tools/call"
	st.via = hostwait.ViaHTTP
	if req.Header.Get(hostwait.ViaHeader) == string(hostwait.ViaBridge) {
		st.via = hostwait.ViaBridge
	}
	if st.sse && s.id != "" {
		s.resume.track(st)
	}
	for _, m := range msgs {
		s.fromHost(m, st, header)
	}
	if s.id != "" {
		w.Header().Set(mcp.HeaderSessionID, s.id)
	}
	if st.sse {
		r.serveEvents(w, req, s, st, ids)
	} else {
		r.serveJSON(w, req, s, st, ids, isBatch)
	}
}

// sessionFor finds the session a POST belongs to, opening one for an
// initialize or a sessionless request. A non-200 status is an HTTP error;
// 200 with an error means the upstream could not be reached. A new host
// session of client must fit under the caps (see admit).
func (r *Relay) sessionFor(req *http.Request, srv *Server, hasInit bool, client string) (*session, int, error) {
	if sid := req.Header.Get(mcp.HeaderSessionID); sid != "" {
		r.mu.Lock()
		s := r.sessions[sid]
		r.mu.Unlock()
		if s == nil || s.srv != srv {
			return nil, http.StatusNotFound, errors.New("session not found")
		}
		return s, http.StatusOK, nil
	}
	r.mu.Lock()
	s := r.stateless[srv.ID]
	r.mu.Unlock()
	if !hasInit && s != nil && s.ctx.Err() == nil {
		return s, http.StatusOK, nil
	}
	opened := func(*session) {}
	if hasInit {
		done, err := r.admit(client)
		if err != nil {
			return nil, http.StatusTooManyRequests, err
		}
		opened = done
	}
	s, err := r.openSession(req.Context(), srv, hasInit)
	opened(s)
	if err != nil {
		if errors.Is(err, errShutdown) {
			return nil, http.StatusServiceUnavailable, err
		}
		return nil, http.StatusOK, fmt.Errorf("could not connect to %s: %v", srv.displayName(), err)
	}
	return s, http.StatusOK, nil
}

// serveEvents streams messages for this POST until every request in it is
// answered or the host goes away. A lone request answered before anything
// else arrives is answered as one JSON body, and the headers of a stream
// are held back until there is something to send or headerDelay passes: a
// quick answer then leaves in a single write with the end of the response,
// so clients that stop reading at the answer can reuse the connection.
// A host session's stream is resumable (see stream).
func (r *Relay) serveEvents(w http.ResponseWriter, req *http.Request, s *session, st *stream, ids [][]byte) {
	st.expect(ids)
	kick := st.startWriting()
	started := false
	var werr error
	start := func() {
		if !started {
			started = true
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Cache-Control", "no-cache")
			w.Header().Set("X-Accel-Buffering", "no")
			w.WriteHeader(http.StatusOK)
			if primes(req, st) {
				werr = st.prime(w)
			}
		}
	}
	flusher, _ := w.(http.Flusher)
	flush := func() {
		start()
		if flusher != nil {
			flusher.Flush()
		}
	}
	delay := headerDelay
	if s.id == "" && len(ids) == 1 && st.call {
		// Sessionless (2026-07-28): the HTTP status of an error answer
		// means something (400 for a bad request, 404 for an unknown
		// method). A tools/call reaches the server only once the person
		// has decided, so wait for its first message before choosing a
		// status, up to the keep-alive interval. (Other requests are
		// sent before this runs, and an error status is known by then.)
		delay = r.o.KeepAlive
	}
	headers := time.NewTimer(delay)
	defer headers.Stop()
	ticker := time.NewTicker(r.o.KeepAlive)
	defer ticker.Stop()
	for !st.done() {
		select {
		case <-headers.C:
			flush()
		case <-st.wake:
			msgs := st.take()
			if len(msgs) == 0 {
				continue
			}
			if !started && len(ids) == 1 && len(msgs) == 1 {
				if m, err := jsonrpc.Parse(msgs[0]); err == nil && m.Kind == jsonrpc.KindResponse && st.isOpen(m.ID) {
					st.answeredBy(m)
					told := st.takeTold(m.ID)
					s.streamClosed(st, st.close())
					err := writeJSON(w, st.statusFor(m.ID), msgs[0])
					if told != nil {
						told(err == nil)
					}
					return
				}
			}
			start()
			if werr = writeAll(w, st, msgs, werr); werr != nil {
				s.streamEnded(st)
				return
			}
			if !st.done() {
				flush() // else the handler returns and net/http writes the rest with the end
			}
		case <-ticker.C:
			start()
			if werr == nil {
				_, werr = io.WriteString(w, ": waiting\n\n")
			}
			if werr != nil {
				s.streamEnded(st)
				return
			}
			flush()
		case <-req.Context().Done():
			s.streamEnded(st)
			return
		case <-kick:
			s.streamEnded(st)
			return
		}
	}
	s.streamClosed(st, st.close())
}

// writeAll writes msgs as events, unless an earlier write failed. What it
// could not write goes back to the stream's queue.
func writeAll(w io.Writer, st *stream, msgs [][]byte, err error) error {
	for i, msg := range msgs {
		if err == nil {
			err = st.write(w, msg)
		}
		if err != nil {
			st.unshift(msgs[i:])
			return err
		}
		st.written(msg)
	}
	return nil
}

// primes reports whether a new event stream for req starts with a priming
// event: an id and no data, which the 2025-11-25 revision has servers send
// so that a client can resume even before the first message. Older
// clients may not expect an event without data; 2026-07-28 streams are not
// resumable.
func primes(req *http.Request, st *stream) bool {
	v := req.Header.Get(mcp.HeaderProtocolVersion)
	return st.num != 0 && v >= "2025-11-25" && v < "2026"
}

// streamEnded is called when a host stream's response ended before the
// stream was done: a resumable stream is detached, keeping its answers for
// a resume, any other is closed.
func (s *session) streamEnded(st *stream) {
	if st.num != 0 {
		s.streamClosed(st, st.detach())
		return
	}
	s.streamClosed(st, st.close())
}

// headerDelay is how long a POST's event stream may wait for its first
// message before its headers are sent anyway.
const headerDelay = 50 * time.Millisecond

// serveJSON waits for every answer and writes them as one JSON body.
func (r *Relay) serveJSON(w http.ResponseWriter, req *http.Request, s *session, st *stream, ids [][]byte, isBatch bool) {
	open := make(map[string]bool, len(ids))
	for _, id := range ids {
		open[string(id)] = true
	}
	var answers [][]byte
	var told []func(bool) // for the answers taken
	for len(open) > 0 {
		select {
		case <-st.wake:
			for _, msg := range st.take() {
				m, err := jsonrpc.Parse(msg)
				if err == nil && m.Kind == jsonrpc.KindResponse && open[string(m.ID)] {
					delete(open, string(m.ID))
					answers = append(answers, msg)
					if f := st.takeTold(m.ID); f != nil {
						told = append(told, f)
					}
				}
			}
		case <-req.Context().Done():
			s.streamClosed(st, st.close())
			tell(told, false)
			return
		}
	}
	s.streamClosed(st, st.close())
	status := http.StatusOK
	if !isBatch && len(ids) == 1 {
		status = st.statusFor(ids[0])
	}
	err := writeJSON(w, status, joinBody(answers, isBatch))
	tell(told, err == nil)
}

// hostStatus is the HTTP status for the host's answer when the server sent
// its JSON-RPC error answer with HTTP status upstream: the status the
// transport specification ties to that error, zero (200) otherwise. A 400
// (bad request, unsupported version, header mismatch) carries over; a 404
// only with -32601, the 2026-07-28 "method not found", and only to a host
// without a session, which would otherwise take it for "session ended". An
// upstream 401 or 403 is about Countersign's own access to the server and
// never reaches the host as such.
func hostStatus(upstream int, rpcError json.RawMessage, sessionless bool) int {
	switch {
	case upstream == http.StatusBadRequest:
		return upstream
	case upstream == http.StatusNotFound && sessionless:
		var e map[string]json.RawMessage
		if json.Unmarshal(rpcError, &e) == nil && string(e["code"]) == "-32601" {
			return upstream
		}
	}
	return 0
}

// handleGet opens the stream for server messages not tied to a request.
func (r *Relay) handleGet(w http.ResponseWriter, req *http.Request, srv *Server) {
	sid := req.Header.Get(mcp.HeaderSessionID)
	if sid == "" {
		w.Header().Set("Allow", "POST")
		httpError(w, http.StatusMethodNotAllowed, "a GET stream needs a session")
		return
	}
	if !accepts(req, "text/event-stream") {
		httpError(w, http.StatusNotAcceptable, "GET must accept text/event-stream")
		return
	}
	r.mu.Lock()
	s := r.sessions[sid]
	r.mu.Unlock()
	if s == nil || s.srv != srv {
		httpError(w, http.StatusNotFound, "session not found")
		return
	}
	if last := req.Header.Get(mcp.HeaderLastEventID); last != "" {
		if st, after, err := s.resume.find(last); err == nil {
			r.serveResumed(w, req, s, st, after)
			return
		}
		// An id the relay does not know, or a stream it no longer keeps:
		// a new stream, as if the host had not asked to resume.
	}
	st := newStream(true)
	st.get = true
	s.resume.track(st)
	kick := st.startWriting()
	s.addGet(st)
	s.capGets()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if primes(req, st) && st.prime(w) != nil {
		s.streamEnded(st)
		return
	}
	r.pump(w, req, s, st, kick)
}

// resumeWait bounds how long a resume waits for the stream's previous
// response to let go of it.
const resumeWait = 5 * time.Second

// serveResumed answers a GET with Last-Event-ID: the events of the stream
// after the one named, then the stream's further messages, as long as the
// stream would have gone on.
func (r *Relay) serveResumed(w http.ResponseWriter, req *http.Request, s *session, st *stream, after int) {
	wait := time.NewTimer(resumeWait)
	defer wait.Stop()
	kick, ok := st.attach(wait.C)
	if !ok {
		httpError(w, http.StatusConflict, "the stream is still open elsewhere")
		return
	}
	if st.done() && !st.wroteAfter(after) {
		// Nothing more will come on it: 204 is how an event stream tells
		// a client to stop reconnecting (some reconnect after an error
		// answer, which they do not count as the end of the stream).
		s.streamClosed(st, st.close())
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if err := st.replay(w, after); err != nil {
		s.streamEnded(st)
		return
	}
	if st.get {
		s.addGet(st)
	}
	r.pump(w, req, s, st, kick)
}

// pump writes a stream's messages as events until a POST stream has
// carried every answer it expects, or the response or session ends.
func (r *Relay) pump(w http.ResponseWriter, req *http.Request, s *session, st *stream, kick <-chan struct{}) {
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	ticker := time.NewTicker(r.o.KeepAlive)
	defer ticker.Stop()
	for !st.done() {
		var err error
		select {
		case <-st.wake:
			err = writeAll(w, st, st.take(), nil)
		case <-ticker.C:
			_, err = io.WriteString(w, ": keep-alive\n\n")
		case <-req.Context().Done():
			err = req.Context().Err()
		case <-s.ctx.Done():
			err = context.Cause(s.ctx)
		case <-kick:
			err = errResumedElsewhere
		}
		if err != nil {
			s.streamEnded(st)
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
	s.streamClosed(st, st.close())
}

var errResumedElsewhere = errors.New("the AI app resumed the stream on another connection")

// handleDelete ends a session at the host's request.
func (r *Relay) handleDelete(w http.ResponseWriter, req *http.Request, srv *Server) {
	sid := req.Header.Get(mcp.HeaderSessionID)
	r.mu.Lock()
	s := r.sessions[sid]
	r.mu.Unlock()
	if sid == "" || s == nil || s.srv != srv {
		httpError(w, http.StatusNotFound, "session not found")
		return
	}
	s.end(errSessionDeleted)
	w.WriteHeader(http.StatusOK)
}

var errSessionDeleted = errors.New("the AI app ended the session")

// accepts reports whether the request's Accept header lists mediaType.
func accepts(req *http.Request, mediaType string) bool {
	for _, v := range req.Header.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
			if strings.EqualFold(strings.TrimSpace(mt), mediaType) {
				return true
			}
		}
	}
	return false
}

func joinBody(msgs [][]byte, batch bool) []byte {
	if !batch && len(msgs) == 1 {
		return msgs[0]
	}
	return append(append([]byte("["), bytes.Join(msgs, []byte(","))...), ']')
}

// writeJSON writes a whole response; its error says the body could not
// be handed to the connection.
func writeJSON(w http.ResponseWriter, status int, body []byte) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, err := w.Write(body)
	return err
}
