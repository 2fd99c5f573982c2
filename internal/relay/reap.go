package relay

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// Bounds on the host sessions an AI app can leave open. A session holds an
// upstream session (for a local server, a child process) until the AI app
// ends it, or until it has been idle for the idle timeout: with no stream
// open and nothing in flight.
const (
	// DefaultMaxSessionsPerClient bounds the sessions of one AI app (by
	// the name it gives in initialize), across servers.
	DefaultMaxSessionsPerClient = 32
	// DefaultMaxSessions bounds the sessions of every AI app together.
	DefaultMaxSessions = 256
	// DefaultEvictAfter is how long a session must have been idle to be
	// closed for room: an AI app that posts its next request a moment
	// after the last answer is using its session, not leaving it, while
	// one that opens a session per task and abandons it (the conformance
	// suite opens one per scenario) leaves sessions idle for longer.
	DefaultEvictAfter = 5 * time.Second
	// maxGets bounds the GET streams open at once on one session; a new
	// one beyond it ends the oldest.
	maxGets = 4
	// deleteLogEvery is how often, at most, a refused DELETE of one AI
	// app's session is logged.
	deleteLogEvery = 10 * time.Minute
)

// errTooManySessions is what an AI app is told when it opens a session
// beyond the caps and none of its sessions is idle.
var errTooManySessions = errors.New("too many open sessions")

var errEvicted = errors.New("the AI app opened too many sessions; this one was the oldest idle")

// admit makes room for a new session of client, ending the session of the
// cap it would exceed that has gone longest without a request (and has
// none in flight, for EvictAfter at least); when there is none it refuses
// with a message for the AI app. done must be called once the session is open
// (or failed to open) with it (or nil).
func (r *Relay) admit(client string) (done func(*session), err error) {
	r.mu.Lock()
	mine, all := r.opening[client], r.openingAll
	var oldestMine, oldestAll *session
	var idleMine, idleAll time.Duration
	now := time.Now()
	for _, s := range r.sessions {
		s.mu.Lock()
		c := s.client
		s.mu.Unlock()
		idle := s.unusedSince(now)
		if idle < r.o.EvictAfter {
			idle = 0 // in use, or only just idle: never closed for room
		}
		all++
		if idle > idleAll {
			oldestAll, idleAll = s, idle
		}
		if c == client {
			mine++
			if idle > idleMine {
				oldestMine, idleMine = s, idle
			}
		}
	}
	var evict *session
	perClient := r.limits.Load().MaxSessionsPerClient
	switch {
	case mine >= perClient && oldestMine == nil:
		r.mu.Unlock()
		return nil, fmt.Errorf("%w: %s already has %d open sessions with Countersign, all in use; close unused connections in the AI app, or restart it",
			errTooManySessions, clientLabel(client), mine)
	case mine >= perClient:
		evict = oldestMine
	case all >= r.o.MaxSessions && oldestAll == nil:
		r.mu.Unlock()
		return nil, fmt.Errorf("%w: AI apps have %d open sessions with Countersign, all in use; close unused connections in your AI apps, or restart them",
			errTooManySessions, all)
	case all >= r.o.MaxSessions:
		evict = oldestAll
	}
	r.opening[client]++
	r.openingAll++
	r.mu.Unlock()
	if evict != nil {
		r.log.Info("closing an AI app's oldest idle session to make room for a new one", "server", evict.srv.ID, "client", client)
		evict.end(errEvicted)
	}
	return func(s *session) {
		if s != nil {
			s.mu.Lock()
			s.client = client
			s.mu.Unlock()
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.openingAll--
		if r.opening[client]--; r.opening[client] <= 0 {
			delete(r.opening, client)
		}
	}, nil
}

func clientLabel(client string) string {
	if client == "" {
		return "An AI app"
	}
	return client
}

// deleteRefused notes a DELETE refused for want of the token. mcp-go's
// client sends its closing DELETE without the Authorization header it
// sends otherwise, so such sessions stay until they are idle long enough.
// Once per AI app per deleteLogEvery, the log says so.
func (r *Relay) deleteRefused(req *http.Request) {
	client := "an unknown AI app"
	r.mu.Lock()
	if s := r.sessions[req.Header.Get(mcp.HeaderSessionID)]; s != nil {
		s.mu.Lock()
		client = clientLabel(s.client)
		s.mu.Unlock()
	}
	now := time.Now()
	last, seen := r.deleteLogged[client]
	log := !seen || now.Sub(last) >= deleteLogEvery
	if log {
		if len(r.deleteLogged) >= DefaultMaxSessions {
			clear(r.deleteLogged)
		}
		r.deleteLogged[client] = now
	}
	r.mu.Unlock()
	if log {
		r.log.Warn("refused an AI app's request to end its session: it did not carry Countersign's access key (mcp-go based apps do this); the session closes once idle",
			"client", client, "idle timeout", r.o.IdleTimeout)
	}
}

// letGo asks the stream's current writer to end its response.
func (s *stream) letGo() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kick != nil {
		select {
		case <-s.kick:
		default:
			close(s.kick)
		}
	}
}

// capGets ends the oldest GET streams beyond maxGets.
func (s *session) capGets() {
	s.mu.Lock()
	var old []*stream
	if n := len(s.gets) - maxGets; n > 0 {
		old = append(old, s.gets[:n]...)
	}
	s.mu.Unlock()
	for _, st := range old {
		st.letGo()
	}
}
