// Package relay is Countersign's MCP proxy: a Streamable HTTP endpoint on
// loopback for each configured upstream server, and one upstream session for
// each host session.
//
// The relay works on raw JSON-RPC messages. It copies every message it does
// not act on to the other side unchanged, remaps only the ids of the host's
// requests (so the relay can tell answers apart and cancel the right call),
// and holds every tools/call in the approval gate until a person decides it.
package relay

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/hostwait"
	"github.com/countersign/countersign/internal/jsonrpc"
	"github.com/countersign/countersign/internal/portproof"
	"github.com/countersign/countersign/internal/transport"
)

// DefaultKeepAlive is how often a waiting host stream gets a keep-alive.
const DefaultKeepAlive = 15 * time.Second

// DefaultIdleTimeout is how long a session with no open stream and nothing
// in flight lives before it is closed, with its upstream session (and a
// local server's process). AI apps that keep a session open hold a GET
// stream; one whose session was closed gets 404 and opens another.
const DefaultIdleTimeout = 5 * time.Minute

// Dialer opens a new upstream session.
type Dialer func(ctx context.Context) (transport.Conn, error)

// Server is one upstream MCP server the relay offers an endpoint for.
type Server struct {
	ID   string // path segment: /servers/{ID}/mcp
	Name string // shown to the person, e.g. "GitHub"
	Dial Dialer
	// Fingerprint identifies the connection settings behind Dial; when
	// SetServers is given another one, the server's open sessions close.
	Fingerprint string
}

// Gate is what the relay needs from the approval queue.
type Gate interface {
	Submit(ctx context.Context, c gate.Call) gate.Verdict
}

// Filter applies Countersign's rules to the traffic the relay intercepts
// besides the tool calls the Gate decides. Its methods run on the routing
// path of a session: they must not block on a person.
type Filter interface {
	// ToolsListed gets each tools/list result from a server and returns
	// what the AI app sees.
	ToolsListed(server string, result json.RawMessage) json.RawMessage
	// CheckResource decides a resources/read or resources/subscribe of uri.
	// A non-empty answer refuses the request with that message.
	CheckResource(server, method, uri string) string
	// Forwarded is told that an approved call (callID is the gate's id) was
	// sent to the server.
	Forwarded(server, callID string)
	// Result gets a tools/call result (with the gate's callID) or a
	// resources/read result (callID empty), or the error the server answered
	// instead (result nil), and returns what the AI app sees in place of
	// whichever of the two it was given, or nil to pass it unchanged.
	Result(server, method, callID string, result, rpcError json.RawMessage) json.RawMessage
	// Delivered follows each Result with a non-empty callID once the
	// relay knows whether that answer reached the AI app: written to its
	// open response (true), or not, because the AI app had gone: its
	// request closed, or a stream it broke off was not resumed in time.
	// A filter that audits the call's end writes its record then.
	Delivered(server, callID string, delivered bool)
	// ServerMessage gets every other message the server sends toward the AI
	// app: its requests (sampling/createMessage, elicitation/create, ...),
	// its notifications (notifications/message, notifications/progress,
	// ...), and its answers to every request but tools/list, tools/call and
	// resources/read, errors included; and, for every message the server
	// sends (those three answers too), its other top-level members (see
	// ServerMessage.Members). It returns the payload the AI app sees
	// instead, or nil to pass the message on byte for byte.
	ServerMessage(server string, m ServerMessage) json.RawMessage
}

// ServerMessage is a message from the server on its way to the AI app, as
// Filter.ServerMessage sees it: only its payload, never its id or method,
// so that a filter cannot break the message's framing.
type ServerMessage struct {
	Kind jsonrpc.Kind // request, notification or response
	// Method is the message's method; for a response, the method of the AI
	// app's request it answers.
	Method string
	// CallID is the gate's id of the approved tool call the message belongs
	// to (it came on that call's stream, or carries its progress token), or
	// empty when there is none or the transport cannot tell.
	CallID string
	// Payload is the params of a request or notification, or the result
	// or (when Error is set) the error of a response.
	Payload json.RawMessage
	Error   bool
	// Members says Payload is instead an object of the message's other
	// top-level members, those beside jsonrpc, id, method, params, result
	// and error (a "_debug" or "_meta" a server added), each with its
	// bytes as sent. The filter's replacement must keep the same members
	// in the same order; only their contents may change.
	Members bool
}

// Options configure a Relay.
type Options struct {
	Servers []Server
	Gate    Gate
	Filter  Filter // nil passes everything but tool calls through unchanged
	// Token is the local client token every request must carry as
	// "Authorization: Bearer <token>".
	Token string
	// Port is the loopback port the relay listens on; requests whose Host
	// names another port or host are refused.
	Port int
	// AllowedOrigins lists Origin values accepted besides none at all.
	AllowedOrigins []string
	KeepAlive      time.Duration // zero means DefaultKeepAlive
	IdleTimeout    time.Duration // zero means DefaultIdleTimeout
	// HostWait, when set, says how long each AI app waits for a tool
	// call's answer (see SetHostWait); nil holds calls as long as the gate
	// does.
	HostWait *hostwait.Table
	// CallTimeout, MaxMessage, MaxInFlight and MaxSessionsPerClient are
	// the relay's first Limits (SetLimits changes them).
	//
	// CallTimeout bounds how long a request forwarded to a server may go
	// unanswered; zero means DefaultCallTimeout.
	CallTimeout time.Duration
	// MaxMessage bounds one POST body; zero means DefaultMaxMessage.
	MaxMessage int64
	// MaxInFlight bounds the bytes of all POST bodies being handled at
	// once; zero means DefaultMaxInFlight.
	MaxInFlight int64
	// MaxSessionsPerClient and MaxSessions bound the open host sessions
	// of one AI app and of all; zero means DefaultMaxSessionsPerClient
	// and DefaultMaxSessions. See Relay.admit.
	MaxSessionsPerClient int
	MaxSessions          int
	// EvictAfter is how long a session must have been idle before it is
	// closed to make room for a new one at a cap; zero means
	// DefaultEvictAfter.
	EvictAfter time.Duration
	Logger     *slog.Logger

	resumeGrace time.Duration // zero means defaultResumeGrace; a test seam
}

// Relay is an http.Handler serving every server's endpoint.
type Relay struct {
	o       Options
	log     *slog.Logger
	servers map[string]*Server

	// Lock order: mu before any session's mu.
	mu        sync.Mutex
	sessions  map[string]*session // by our Mcp-Session-Id
	stateless map[string]*session // by server id: the shared session for sessionless requests
	closed    bool
	stopReap  chan struct{}
	// opening counts the sessions being opened, by AI app, and in all.
	opening    map[string]int
	openingAll int
	// deleteLogged is when a refused DELETE was last logged, by AI app.
	deleteLogged map[string]time.Time

	hostWait atomic.Pointer[hostwait.Table]
	limits   atomic.Pointer[Limits] // defaults filled in; see SetLimits
	inFlight budget                 // bytes of the POST bodies being handled
}

// SetHostWait changes how long AI apps are taken to wait for a tool call's
// answer, for calls from now on (nil: as long as the gate holds them).
func (r *Relay) SetHostWait(t *hostwait.Table) { r.hostWait.Store(t) }

// New checks the options and returns a relay.
func New(o Options) (*Relay, error) {
	if len(o.Token) < 32 {
		return nil, errors.New("relay: the local client token is missing or too short")
	}
	if o.Gate == nil {
		return nil, errors.New("relay: no approval gate")
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = DefaultKeepAlive
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.resumeGrace <= 0 {
		o.resumeGrace = defaultResumeGrace
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = DefaultMaxSessions
	}
	if o.EvictAfter <= 0 {
		o.EvictAfter = DefaultEvictAfter
	}
	r := &Relay{
		stopReap:  make(chan struct{}),
		o:         o,
		log:       o.Logger,
		servers:   make(map[string]*Server),
		sessions:  make(map[string]*session),
		stateless: make(map[string]*session),

		opening:      make(map[string]int),
		deleteLogged: make(map[string]time.Time),
	}
	servers, err := serverMap(o.Servers)
	if err != nil {
		return nil, err
	}
	r.servers = servers
	r.hostWait.Store(o.HostWait)
	r.SetLimits(Limits{CallTimeout: o.CallTimeout, MaxMessage: o.MaxMessage, MaxInFlight: o.MaxInFlight, MaxSessionsPerClient: o.MaxSessionsPerClient})
	go r.reapLoop()
	return r, nil
}

func serverMap(list []Server) (map[string]*Server, error) {
	m := make(map[string]*Server, len(list))
	for i := range list {
		s := list[i]
		if s.ID == "" || strings.ContainsAny(s.ID, "/?#") || s.Dial == nil {
			return nil, fmt.Errorf("relay: server %d has no usable id or dialer", i)
		}
		if _, dup := m[s.ID]; dup {
			return nil, fmt.Errorf("relay: server id %q is used twice", s.ID)
		}
		m[s.ID] = &s
	}
	return m, nil
}

// SetServers replaces the servers the relay offers, as settings change.
// Sessions of a server that is gone, or whose Fingerprint changed, are
// closed: their AI apps reconnect with the new settings.
func (r *Relay) SetServers(list []Server) error {
	next, err := serverMap(list)
	if err != nil {
		return err
	}
	r.mu.Lock()
	for id, srv := range next {
		if old := r.servers[id]; old != nil && old.Fingerprint == srv.Fingerprint && old.Name == srv.Name {
			next[id] = old // keep open sessions: nothing they use changed
		}
	}
	r.servers = next
	var stale []*session
	for _, s := range r.sessions {
		if next[s.srv.ID] != s.srv {
			stale = append(stale, s)
		}
	}
	for _, s := range r.stateless {
		if next[s.srv.ID] != s.srv {
			stale = append(stale, s)
		}
	}
	r.mu.Unlock()
	for _, s := range stale {
		s.end(errSettingsChanged)
	}
	return nil
}

var errSettingsChanged = errors.New("the server's settings changed in Countersign")

// reapLoop closes idle sessions until the relay closes.
func (r *Relay) reapLoop() {
	t := time.NewTicker(r.o.IdleTimeout / 4)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			r.reap(now)
		case <-r.stopReap:
			return
		}
	}
}

// reap ends every session idle at now. Hosts that vanish without DELETE
// would otherwise keep upstream sessions, and stdio child processes, alive.
func (r *Relay) reap(now time.Time) {
	r.mu.Lock()
	var idle []*session
	for _, s := range r.sessions {
		if s.idleSince(now) > r.o.IdleTimeout {
			idle = append(idle, s)
		}
	}
	for _, s := range r.stateless {
		if s.idleSince(now) > r.o.IdleTimeout {
			idle = append(idle, s)
		}
	}
	r.mu.Unlock()
	for _, s := range idle {
		r.log.Info("closing an idle session", "server", s.srv.ID)
		s.end(errIdle)
	}
}

var errIdle = errors.New("the session was idle too long")

// Listen opens a loopback listener on port (0 picks one). It refuses any
// address that is not loopback.
func Listen(port int) (net.Listener, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("relay: listening on 127.0.0.1:%d: %w", port, err)
	}
	return ln, nil
}

// ServeHTTP checks where the request comes from and who sent it, then
// routes it to a server's endpoint.
func (r *Relay) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if !r.hostAllowed(req.Host) {
		httpError(w, http.StatusForbidden, "Host not allowed")
		return
	}
	if origin := req.Header.Get("Origin"); origin != "" && !r.originAllowed(origin) {
		httpError(w, http.StatusForbidden, "Origin not allowed")
		return
	}
	if req.URL.Path == portproof.Path {
		r.serveProof(w, req)
		return
	}
	if !r.tokenValid(req.Header.Get("Authorization")) {
		if req.Method == http.MethodDelete {
			r.deleteRefused(req)
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="countersign"`)
		httpError(w, http.StatusUnauthorized, "missing or wrong Countersign token")
		return
	}
	id, ok := strings.CutPrefix(req.URL.Path, "/servers/")
	if ok {
		id, ok = strings.CutSuffix(id, "/mcp")
	}
	r.mu.Lock()
	srv := r.servers[id]
	r.mu.Unlock()
	if !ok || srv == nil {
		httpError(w, http.StatusNotFound, "no such server")
		return
	}
	switch req.Method {
	case http.MethodPost:
		r.handlePost(w, req, srv)
	case http.MethodGet:
		r.handleGet(w, req, srv)
	case http.MethodDelete:
		r.handleDelete(w, req, srv)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		httpError(w, http.StatusMethodNotAllowed, "method not allowed")
	}
}

// hostAllowed accepts only loopback names with our port (DNS rebinding).
func (r *Relay) hostAllowed(hostport string) bool {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || port != strconv.Itoa(r.o.Port) {
		return false
	}
	switch host {
	case "127.0.0.1", "localhost", "::1":
		return true
	}
	return false
}

// originAllowed accepts our own origin (we serve no pages, so only our own
// clients can claim it) and the configured ones.
func (r *Relay) originAllowed(origin string) bool {
	if u, ok := strings.CutPrefix(origin, "http://"); ok && r.hostAllowed(u) {
		return true
	}
	for _, o := range r.o.AllowedOrigins {
		if origin == o {
			return true
		}
	}
	return false
}

// serveProof answers a client's challenge, so that it can tell this is
// Countersign before it sends the token (see package portproof). The answer
// is a MAC of the client's nonce under a label only this proof uses; the
// relay never accepts such a MAC as a credential.
func (r *Relay) serveProof(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		httpError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	proof, ok := portproof.Answer(r.o.Token, r.o.Port, req.Header.Get(portproof.ChallengeHeader))
	if !ok {
		httpError(w, http.StatusBadRequest, "missing or malformed challenge")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set(portproof.ProofHeader, proof)
	w.WriteHeader(http.StatusNoContent)
}

func (r *Relay) tokenValid(authz string) bool {
	tok, ok := strings.CutPrefix(authz, "Bearer ")
	if !ok {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(tok), []byte(r.o.Token)) == 1
}

// Close ends every session; calls waiting for approval are denied.
func (r *Relay) Close() {
	r.mu.Lock()
	if !r.closed {
		close(r.stopReap)
	}
	r.closed = true
	all := make([]*session, 0, len(r.sessions)+len(r.stateless))
	for _, s := range r.sessions {
		all = append(all, s)
	}
	for _, s := range r.stateless {
		all = append(all, s)
	}
	r.sessions = map[string]*session{}
	r.stateless = map[string]*session{}
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range all {
		wg.Go(func() { s.end(errShutdown) })
	}
	wg.Wait()
}

var errShutdown = errors.New("countersign is shutting down")

func httpError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":%q}}`, msg)
}
