package app

import (
	"context"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/countersign/countersign/internal/peeruid"
)

// serverLimits bound what a client can hold open on the loopback listener.
// Every user of the machine can connect to it; only the person's own AI
// apps have the token.
type serverLimits struct {
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request without the token. A
	// request with the token has no read deadline once it is checked: its
	// response may be a stream held open for as long as a person takes to
	// decide. (Go's server does not cancel a request whose deadline passes
	// after its body was read, but the held stream should not depend on
	// that.) There is no write timeout for the same reason.
	ReadTimeout time.Duration
	// IdleTimeout closes a kept-alive connection with no request.
	IdleTimeout time.Duration
	// Unauthenticated is how long a connection may stay open before a
	// request on it has carried the token: long enough for the challenge
	// of package portproof and the request that follows it.
	Unauthenticated time.Duration
	// MaxUnauthenticated caps connections that have not yet carried the
	// token; a new one beyond it closes one of them (see connLimiter).
	MaxUnauthenticated int
	// MaxUnauthenticatedPerUser caps the connections without the token
	// that one user of the machine holds, where the user can be found: a
	// new one beyond it closes that user's oldest, never another user's.
	// Zero means no cap per user (limitListener alone; Run fills it).
	MaxUnauthenticatedPerUser int
	// MaxConns caps all connections; beyond it a new connection is closed
	// at once unless an unauthenticated one can make room.
	MaxConns int
	// YoungGrace is how long a new connection without the token is kept
	// out of its user's cap: it may not have had a moment to send its
	// request yet (an AI app opening many at once). The total caps still
	// hold. Zero: none.
	YoungGrace time.Duration
}

var defaultLimits = serverLimits{
	ReadHeaderTimeout:         10 * time.Second,
	ReadTimeout:               30 * time.Second,
	IdleTimeout:               2 * time.Minute,
	Unauthenticated:           10 * time.Second,
	MaxUnauthenticated:        128, // well above the connections an AI app opens at once
	MaxUnauthenticatedPerUser: 32,  // the same, for one user's AI apps together
	MaxConns:                  1024,
	YoungGrace:                2 * time.Second,
}

// orDefaults fills the zero fields from defaultLimits.
func (l serverLimits) orDefaults() serverLimits {
	d := defaultLimits
	set := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&l.ReadHeaderTimeout, d.ReadHeaderTimeout)
	set(&l.ReadTimeout, d.ReadTimeout)
	set(&l.IdleTimeout, d.IdleTimeout)
	set(&l.Unauthenticated, d.Unauthenticated)
	set(&l.YoungGrace, d.YoungGrace)
	if l.MaxUnauthenticated <= 0 {
		l.MaxUnauthenticated = d.MaxUnauthenticated
	}
	if l.MaxUnauthenticatedPerUser <= 0 {
		l.MaxUnauthenticatedPerUser = d.MaxUnauthenticatedPerUser
	}
	if l.MaxConns <= 0 {
		l.MaxConns = d.MaxConns
	}
	return l
}

// newServer is the loopback HTTP server for h, with the limits applied.
// Serve it on limitListener(ln, lim).
func newServer(h http.Handler, lim serverLimits) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		ReadTimeout:       lim.ReadTimeout,
		IdleTimeout:       lim.IdleTimeout,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if lc, ok := c.(*limitedConn); ok {
				return context.WithValue(ctx, connKey{}, lc)
			}
			return ctx
		},
	}
}

type connKey struct{}

// authenticated marks the connection of a request that carried the token:
// it is no longer closed for lack of one, nor evicted by newcomers.
func authenticated(ctx context.Context) {
	if lc, ok := ctx.Value(connKey{}).(*limitedConn); ok {
		lc.l.authenticate(lc)
	}
}

// limitListener caps the connections accepted from ln (see serverLimits).
func limitListener(ln net.Listener, lim serverLimits) *connLimiter {
	return &connLimiter{Listener: ln, lim: lim, all: make(map[*limitedConn]bool), owner: connOwner, intn: rand.IntN}
}

// connOwner finds the user of the machine who opened c (Linux only).
func connOwner(c net.Conn) (uint32, bool) {
	local, ok1 := c.LocalAddr().(*net.TCPAddr)
	remote, ok2 := c.RemoteAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return 0, false
	}
	uid, err := peeruid.Lookup(local.AddrPort(), remote.AddrPort())
	return uid, err == nil
}

// connLimiter is a net.Listener that enforces the connection caps. Every
// user of the machine can connect, so room for a newcomer is made at the
// expense of whoever holds the most connections without the token: a
// user's own oldest when they reach their cap, else at the total caps the
// oldest of the user holding the most, or a random one of those whose user
// is unknown. Picking at random where users are unknown means a flood of
// connections cannot time the closing of an AI app's connection between
// its proof challenge and its first request.
type connLimiter struct {
	net.Listener
	lim serverLimits
	// owner finds the user who opened a connection; ok is false where
	// that cannot be known (other OSes, a client that already left).
	owner func(c net.Conn) (uid uint32, ok bool)
	intn  func(n int) int // a random number in [0, n)

	mu     sync.Mutex
	all    map[*limitedConn]bool // open connections: authenticated or not
	unauth []*limitedConn        // not yet authenticated, oldest first
}

// Accept returns the next connection, making room for it by closing one
// without the token when a cap is reached, or closing it when there is
// none to close.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		lc := &limitedConn{Conn: c, l: l, accepted: time.Now()}
		l.lookUpOwners(lc)
		l.mu.Lock()
		evict, room := l.makeRoomLocked(lc)
		if !room {
			l.mu.Unlock()
			c.Close() // every connection carries the token: no room
			continue
		}
		if evict != nil {
			l.dropLocked(evict)
		}
		l.all[lc] = false
		l.unauth = append(l.unauth, lc)
		lc.timer = time.AfterFunc(l.lim.Unauthenticated, lc.expire)
		l.mu.Unlock()
		if evict != nil {
			evict.Conn.Close()
		}
		return lc, nil
	}
}

// lookUpOwners finds who opened lc, and each connection without the token
// whose user is not known yet, when a cap is near enough for users to
// decide which connection goes. Each lookup scans the machine's socket
// table (about 10 ms with a few thousand sockets), so under the caps,
// where every AI app's connection carries the token at once, accepting
// does not wait for it. A connection is looked up once; one whose other
// end has gone by then is of an unknown user.
func (l *connLimiter) lookUpOwners(lc *limitedConn) {
	l.mu.Lock()
	if !l.usersCountLocked() {
		l.mu.Unlock()
		return
	}
	todo := []*limitedConn{lc}
	for _, u := range l.unauth {
		if !u.looked {
			todo = append(todo, u)
		}
	}
	l.mu.Unlock()
	type found struct {
		uid   uint32
		known bool
	}
	res := make([]found, len(todo))
	for i, c := range todo {
		res[i].uid, res[i].known = l.owner(c.Conn)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, c := range todo {
		c.uid, c.known, c.looked = res[i].uid, res[i].known, true
	}
}

// usersCountLocked reports whether a new connection could reach a cap,
// where who holds which connections decides which one is closed.
func (l *connLimiter) usersCountLocked() bool {
	return (l.lim.MaxUnauthenticatedPerUser > 0 && len(l.unauth) >= l.lim.MaxUnauthenticatedPerUser) ||
		len(l.unauth) >= l.lim.MaxUnauthenticated || len(l.all) >= l.lim.MaxConns
}

// makeRoomLocked picks the connection without the token to close so that
// lc fits under the caps: nil when it fits already. room is false when it
// cannot fit.
func (l *connLimiter) makeRoomLocked(lc *limitedConn) (evict *limitedConn, room bool) {
	if lc.known && l.lim.MaxUnauthenticatedPerUser > 0 {
		var mine []*limitedConn
		for _, u := range l.unauth {
			if u.known && u.uid == lc.uid {
				mine = append(mine, u)
			}
		}
		// The oldest goes, once it has had time to send its request.
		if len(mine) >= l.lim.MaxUnauthenticatedPerUser && time.Since(mine[0].accepted) >= l.lim.YoungGrace {
			return mine[0], true
		}
	}
	if len(l.unauth) < l.lim.MaxUnauthenticated && len(l.all) < l.lim.MaxConns {
		return nil, true
	}
	if len(l.unauth) == 0 {
		return nil, false
	}
	if !lc.known {
		return l.unauth[l.intn(len(l.unauth))], true
	}
	// The user holding the most goes first; those of unknown users count
	// as one more user.
	count := make(map[uint32]int)
	var unknown []*limitedConn
	for _, u := range l.unauth {
		if u.known {
			count[u.uid]++
		} else {
			unknown = append(unknown, u)
		}
	}
	var top *limitedConn // oldest of the known user holding the most
	for _, u := range l.unauth {
		if u.known && (top == nil || count[u.uid] > count[top.uid]) {
			top = u
		}
	}
	if top == nil || len(unknown) >= count[top.uid] {
		return unknown[l.intn(len(unknown))], true
	}
	return top, true
}

// open reports how many connections are open and how many of them have
// not carried the token.
func (l *connLimiter) open() (all, unauth int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.all), len(l.unauth)
}

func (l *connLimiter) authenticate(lc *limitedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if authed, open := l.all[lc]; !open || authed {
		return
	}
	l.all[lc] = true
	l.removeUnauthLocked(lc)
	lc.timer.Stop()
}

// dropLocked forgets lc; it is being closed.
func (l *connLimiter) dropLocked(lc *limitedConn) {
	if _, open := l.all[lc]; !open {
		return
	}
	delete(l.all, lc)
	l.removeUnauthLocked(lc)
	lc.timer.Stop()
}

func (l *connLimiter) removeUnauthLocked(lc *limitedConn) {
	for i, u := range l.unauth {
		if u == lc {
			l.unauth = append(l.unauth[:i], l.unauth[i+1:]...)
			return
		}
	}
}

// limitedConn is a connection counted by its connLimiter.
type limitedConn struct {
	net.Conn
	l     *connLimiter
	uid   uint32 // the user who opened it, when known
	known bool   // whether uid is known
	// looked is set once the user was looked up: only near a cap (see
	// lookUpOwners), under l.mu like uid and known.
	looked bool
	timer  *time.Timer // closes it if it has not carried the token in time
	// accepted is when it was accepted (see serverLimits.YoungGrace).
	accepted time.Time
}

// expire closes the connection if it still has not carried the token.
func (c *limitedConn) expire() {
	c.l.mu.Lock()
	authed, open := c.l.all[c]
	if open && !authed {
		c.l.dropLocked(c)
	}
	c.l.mu.Unlock()
	if open && !authed {
		c.Conn.Close()
	}
}

func (c *limitedConn) Close() error {
	c.l.mu.Lock()
	c.l.dropLocked(c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}
