package app

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"
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
	// token; a new one beyond it closes the oldest of them.
	MaxUnauthenticated int
	// MaxConns caps all connections; beyond it a new connection is closed
	// at once unless an unauthenticated one can make room.
	MaxConns int
}

var defaultLimits = serverLimits{
	ReadHeaderTimeout:  10 * time.Second,
	ReadTimeout:        30 * time.Second,
	IdleTimeout:        2 * time.Minute,
	Unauthenticated:    10 * time.Second,
	MaxUnauthenticated: 128, // well above the connections an AI app opens at once
	MaxConns:           1024,
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
	if l.MaxUnauthenticated <= 0 {
		l.MaxUnauthenticated = d.MaxUnauthenticated
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
	return &connLimiter{Listener: ln, lim: lim, all: make(map[*limitedConn]bool)}
}

// connLimiter is a net.Listener that enforces the connection caps.
type connLimiter struct {
	net.Listener
	lim serverLimits

	mu     sync.Mutex
	all    map[*limitedConn]bool // open connections: authenticated or not
	unauth []*limitedConn        // not yet authenticated, oldest first
}

// Accept returns the next connection, making room for it by closing the
// oldest unauthenticated one when a cap is reached, or closing it when
// there is none to close.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		lc := &limitedConn{Conn: c, l: l}
		l.mu.Lock()
		var evict *limitedConn
		if len(l.unauth) >= l.lim.MaxUnauthenticated || len(l.all) >= l.lim.MaxConns {
			if len(l.unauth) == 0 {
				l.mu.Unlock()
				c.Close() // every connection carries the token: no room
				continue
			}
			evict = l.unauth[0]
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
	timer *time.Timer // closes it if it has not carried the token in time
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
