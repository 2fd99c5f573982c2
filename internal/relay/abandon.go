package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/countersign/countersign/internal/jsonrpc"
)

// DefaultCallTimeout bounds how long a request forwarded to a server may go
// unanswered: then the AI app gets an error, the server is told to cancel,
// and the audit records the end of the call.
const DefaultCallTimeout = 10 * time.Minute

// defaultResumeGrace is how long a host stream that broke off may wait to
// be resumed (Last-Event-ID) before the requests still forwarded on it are
// cancelled.
const defaultResumeGrace = time.Minute

// inFlight notes that req was forwarded: it is answered with an error and
// cancelled upstream if no answer comes within the call timeout. It
// returns the context bounding the request's send. s.mu must be held.
func (s *session) inFlightLocked(req *request) context.Context {
	s.inflight[req.upID] = req
	ctx, cancel := context.WithCancel(s.ctx)
	req.stopSend = cancel
	timeout := s.r.limits.Load().CallTimeout
	req.deadline = time.AfterFunc(timeout, func() {
		s.abandon(req, fmt.Sprintf("Countersign stopped waiting: %s did not answer within %v", s.srv.displayName(), timeout),
			"the server did not answer in time")
	})
	return ctx
}

// settled stops the watch on a forwarded request whose end is known.
func (req *request) settled() {
	if req.deadline != nil {
		req.deadline.Stop()
	}
	if req.stopSend != nil {
		req.stopSend()
	}
}

// abandon ends a forwarded request that will get no answer the host can
// use: the server is told to cancel it, and the host gets message (if it
// still listens) through the filter, which records the end of a tool call.
func (s *session) abandon(req *request, message, reason string) {
	s.mu.Lock()
	if s.inflight[req.upID] != req {
		s.mu.Unlock()
		return // answered meanwhile
	}
	delete(s.inflight, req.upID)
	delete(s.byHostID, s.hostKey(req.st, req.hostID))
	s.mu.Unlock()
	req.settled()
	s.r.log.Warn("a forwarded request ended without an answer", "server", s.srv.ID, "method", req.method, "why", reason)
	n, err := jsonrpc.Notification("notifications/cancelled", map[string]any{
		"requestId": json.RawMessage(req.upID),
		"reason":    reason,
	})
	if err == nil {
		s.sendBuilt(n, nil)
	}
	s.answerForwarded(req, jsonrpc.ErrorResponse(req.hostID, jsonrpc.CodeConnectionClosed, message))
}

// forwardedOn returns the requests forwarded on st and not yet answered.
// s.mu must be held.
func (s *session) forwardedOnLocked(st *stream) []*request {
	var out []*request
	for _, req := range s.inflight {
		if req.st == st {
			out = append(out, req)
		}
	}
	return out
}

// hostLeft ends the requests forwarded on a host stream that closed: the
// host cannot get their answers. A stream that may still be resumed gets
// a grace period first, which also bounds how long the answers it holds
// wait for the host: then they are known not to have been delivered.
func (s *session) hostLeft(st *stream, forwarded []*request) {
	if len(forwarded) == 0 && !st.holdsAnswers() {
		return
	}
	end := func() {
		for _, req := range forwarded {
			s.abandon(req, "Countersign cancelled the request: the AI app closed it", "the AI app closed the request")
		}
	}
	if !st.isDetached() {
		end()
		return
	}
	time.AfterFunc(s.r.o.resumeGrace, func() {
		if unread, ok := st.closeIfDetached(); ok {
			s.streamClosed(st, unread) // ends them, now closed
		}
	})
}

// isDetached reports whether the stream's response ended early and it
// waits for a resume.
func (s *stream) isDetached() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.detached && !s.closed
}

// closeIfDetached closes the stream if it is still waiting for a resume,
// returning what was left unread.
func (s *stream) closeIfDetached() ([][]byte, bool) {
	s.mu.Lock()
	if !s.detached || s.closed {
		s.mu.Unlock()
		return nil, false
	}
	s.closed = true
	s.release()
	q := s.queue
	s.queue = nil
	untold := s.untoldLocked()
	s.mu.Unlock()
	tell(untold, false)
	return q, true
}
