package app

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/portproof"
)

// closedWithin reports whether the server closed c within d.
func closedWithin(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	return !errors.Is(err, os.ErrDeadlineExceeded)
}

// Connections from anyone on the machine that never carry the token are
// closed: silent ones, ones refused for want of the token, and ones that
// asked for the listener's proof and stayed. A call held for a person on a
// connection with the token outlives all those timeouts.
func TestConnectionsWithoutTheTokenAreClosed(t *testing.T) {
	short := serverLimits{ReadHeaderTimeout: 300 * time.Millisecond, ReadTimeout: 300 * time.Millisecond,
		IdleTimeout: 300 * time.Millisecond, Unauthenticated: 300 * time.Millisecond, MaxUnauthenticated: 1000}
	rn := startApp(t, func(o *Options) { o.limits = short })
	port := strings.TrimPrefix(strings.TrimSuffix(rn.url, "/servers/up/mcp"), "http://127.0.0.1:")
	answer := rn.callEcho(t)
	call := waitPending(t, rn.ui.core.Queue)

	nonce := strings.Repeat("A", 43)
	kinds := map[string]string{
		"refused":  "GET /servers/up/mcp HTTP/1.1\r\nHost: 127.0.0.1:" + port + "\r\n\r\n",
		"proof":    "GET " + portproof.Path + " HTTP/1.1\r\nHost: 127.0.0.1:" + port + "\r\n" + portproof.ChallengeHeader + ": " + nonce + "\r\n\r\n",
		"half":     "GET /servers/up/mcp HTTP/1.1\r\nHost: 127.0.0.1:" + port + "\r\n", // headers never end
		"silent":   "",
		"bad body": "POST /servers/up/mcp HTTP/1.1\r\nHost: 127.0.0.1:" + port + "\r\nContent-Length: 100\r\n\r\n{",
	}
	type idle struct {
		kind string
		c    net.Conn
	}
	var conns []idle
	for i := range 200 {
		kind := []string{"refused", "proof", "half", "silent", "bad body"}[i%5]
		c, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, kinds[kind])
		if kind == "refused" || kind == "proof" {
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("%s: %v", kind, err)
			}
			resp.Body.Close()
			if want := map[string]int{"refused": 401, "proof": 204}[kind]; resp.StatusCode != want {
				t.Fatalf("%s: status %d, want %d", kind, resp.StatusCode, want)
			}
		}
		conns = append(conns, idle{kind, c})
	}
	for i, ic := range conns {
		if !closedWithin(ic.c, 15*time.Second) { // generous: the limits are 300 ms
			t.Fatalf("connection %d (%s) is still open", i, ic.kind)
		}
	}

	// The held call was not cancelled by any of it.
	select {
	case got := <-answer:
		t.Fatalf("the held call ended before the person decided: %s", got)
	default:
	}
	if err := rn.ui.core.Queue.Decide(call.ID, gate.Decision{Approve: true}); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-answer:
		if !strings.Contains(got, "echo: x") {
			t.Fatalf("held call got %s", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the held call never answered")
	}
}

// The caps: unauthenticated connections beyond their cap close the oldest
// of them; authenticated ones are never closed to make room; with no room
// at all a newcomer is closed.
func TestConnectionCaps(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := limitListener(ln, serverLimits{MaxUnauthenticated: 3, MaxConns: 5, Unauthenticated: time.Hour})
	defer l.Close()
	accepted := make(chan *limitedConn)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c.(*limitedConn)
		}
	}()
	type pair struct {
		client net.Conn
		server *limitedConn
	}
	dial := func() pair {
		t.Helper()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return pair{c, <-accepted}
	}
	isOpen := func(p pair) bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		_, ok := l.all[p.server]
		return ok
	}
	wantOpen := func(all, unauth int) {
		t.Helper()
		if a, u := l.open(); a != all || u != unauth {
			t.Fatalf("open %d (%d without the token), want %d (%d)", a, u, all, unauth)
		}
	}

	var ps []pair
	for range 5 {
		ps = append(ps, dial())
	}
	wantOpen(3, 3)
	for i, p := range ps {
		if isOpen(p) != (i >= 2) {
			t.Fatalf("connection %d open = %v: the oldest without the token should have gone", i, isOpen(p))
		}
		if i < 2 && !closedWithin(p.client, 10*time.Second) {
			t.Fatalf("connection %d was dropped but not closed", i)
		}
	}

	// Two carry the token; newcomers now fill the total cap of 5.
	l.authenticate(ps[2].server)
	l.authenticate(ps[3].server)
	wantOpen(3, 1)
	a, b := dial(), dial()
	wantOpen(5, 3)
	c := dial() // at the total cap: the oldest without the token goes
	wantOpen(5, 3)
	if isOpen(ps[4]) || !isOpen(a) || !isOpen(b) || !isOpen(c) || !isOpen(ps[2]) || !isOpen(ps[3]) {
		t.Fatal("the wrong connection made room")
	}

	// All carry the token: a newcomer is closed, nobody else.
	for _, p := range []pair{a, b, c} {
		l.authenticate(p.server)
	}
	wantOpen(5, 0)
	late, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	if !closedWithin(late, 10*time.Second) {
		t.Fatal("a connection beyond the cap stayed open")
	}
	wantOpen(5, 0)

	// Closing one makes room again.
	a.server.Close()
	wantOpen(4, 0)
	d := dial()
	if !isOpen(d) {
		t.Fatal("no room after a connection closed")
	}
	wantOpen(5, 1)
}

// An unauthenticated connection is closed after its time even when it
// keeps sending challenges.
func TestUnauthenticatedConnectionExpires(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := limitListener(ln, serverLimits{MaxUnauthenticated: 10, MaxConns: 10, Unauthenticated: 50 * time.Millisecond})
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !closedWithin(c, 10*time.Second) {
		t.Fatal("still open")
	}
	if a, u := l.open(); a != 0 || u != 0 {
		t.Fatalf("open %d, %d", a, u)
	}
}

// userListener is a limitListener whose connections' users the test
// names: each dial says who is connecting, and waits for the accept.
type userListener struct {
	t        *testing.T
	l        *connLimiter
	accepted chan *limitedConn

	mu    sync.Mutex
	who   uint32
	known bool
}

type userConn struct {
	client net.Conn
	server *limitedConn
}

func newUserListener(t *testing.T, lim serverLimits) *userListener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &userListener{t: t, l: limitListener(ln, lim), accepted: make(chan *limitedConn)}
	// Each connection is the user's who was dialing when it came in,
	// whenever it is looked up.
	type user struct {
		uid   uint32
		known bool
	}
	users := map[string]user{}
	dialer := func(c net.Conn) (uint32, bool) {
		u.mu.Lock()
		defer u.mu.Unlock()
		v, ok := users[c.RemoteAddr().String()]
		if !ok {
			v = user{u.who, u.known}
			users[c.RemoteAddr().String()] = v
		}
		return v.uid, v.known
	}
	u.l.owner = dialer
	t.Cleanup(func() { u.l.Close() })
	go func() {
		for {
			c, err := u.l.Accept()
			if err != nil {
				close(u.accepted)
				return
			}
			dialer(c)
			u.accepted <- c.(*limitedConn)
		}
	}()
	return u
}

// dial connects as user uid; known false is a user the lookup cannot find.
func (u *userListener) dial(uid uint32, known bool) userConn {
	u.t.Helper()
	u.mu.Lock()
	u.who, u.known = uid, known
	u.mu.Unlock()
	c, err := net.Dial("tcp", u.l.Addr().String())
	if err != nil {
		u.t.Fatal(err)
	}
	u.t.Cleanup(func() { c.Close() })
	return userConn{c, <-u.accepted}
}

func (u *userListener) isOpen(c userConn) bool {
	u.l.mu.Lock()
	defer u.l.mu.Unlock()
	_, ok := u.l.all[c.server]
	return ok
}

// unauthOf counts the open connections without the token of user uid.
func (u *userListener) unauthOf(uid uint32) int {
	u.l.mu.Lock()
	defer u.l.mu.Unlock()
	n := 0
	for _, c := range u.l.unauth {
		if c.known && c.uid == uid {
			n++
		}
	}
	return n
}

const (
	person  uint32 = 1000 // the person, whose AI app is between its challenge and its first request
	another uint32 = 1001 // another user of the machine, opening connections fast
)

// Another local user opening connections fast closes only their own: the
// person's connection without the token yet stays open.
func TestAnotherUserCannotCloseThePersonsConnection(t *testing.T) {
	u := newUserListener(t, serverLimits{MaxUnauthenticated: 10, MaxUnauthenticatedPerUser: 3, MaxConns: 20, Unauthenticated: time.Hour})
	app := u.dial(person, true)
	var theirs []userConn
	for range 50 {
		theirs = append(theirs, u.dial(another, true))
		if n := u.unauthOf(another); n > 3 {
			t.Fatalf("the other user holds %d connections without the token, cap 3", n)
		}
	}
	if !u.isOpen(app) {
		t.Fatal("another user's connections closed the person's")
	}
	for i, c := range theirs {
		if u.isOpen(c) != (i >= 47) {
			t.Fatalf("their connection %d open = %v: their oldest should have gone", i, u.isOpen(c))
		}
	}
	if !closedWithin(theirs[0].client, 10*time.Second) {
		t.Fatal("an evicted connection was not closed")
	}
	// The person's own connections are capped the same way.
	mine := []userConn{app}
	for range 3 {
		mine = append(mine, u.dial(person, true))
	}
	if u.isOpen(mine[0]) || !u.isOpen(mine[3]) || u.unauthOf(person) != 3 || u.unauthOf(another) != 3 {
		t.Fatal("the person's fourth connection did not close their own oldest")
	}
}

// Where users cannot be found, the total cap closes one at random, not the
// oldest: a flood cannot predict which goes. A newcomer whose user is known
// makes room from whoever holds the most, unknown users counting as one.
func TestUnknownUsersAreEvictedAtRandom(t *testing.T) {
	u := newUserListener(t, serverLimits{MaxUnauthenticated: 4, MaxUnauthenticatedPerUser: 3, MaxConns: 20, Unauthenticated: time.Hour})
	var picks []int
	pick := 0
	u.l.intn = func(n int) int {
		picks = append(picks, n)
		return pick % n
	}
	app := u.dial(person, true) // the oldest
	var unknown []userConn
	for range 3 {
		unknown = append(unknown, u.dial(0, false))
	}
	pick = 3
	late := u.dial(0, false) // at the cap: one of the four at random
	if len(picks) != 1 || picks[0] != 4 {
		t.Fatalf("random picks %v, want one among 4", picks)
	}
	if !u.isOpen(app) || u.isOpen(unknown[2]) || !u.isOpen(unknown[0]) || !u.isOpen(late) {
		t.Fatal("the connection picked at random was not the one closed")
	}

	// A known newcomer at the total cap: the unknown ones (3) outnumber the
	// person's (1), so one of them goes, at random.
	pick = 0
	u.dial(another, true)
	if len(picks) != 2 || picks[1] != 3 || u.isOpen(unknown[0]) || !u.isOpen(app) {
		t.Fatalf("random picks %v; unknown[0] open %v, the person's %v", picks, u.isOpen(unknown[0]), u.isOpen(app))
	}
}

// The real lookup finds this process's own user for a real loopback
// connection on Linux.
func TestConnectionOwnerIsFound(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the socket table is read on Linux only")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := limitListener(ln, serverLimits{MaxUnauthenticated: 3, MaxConns: 5, Unauthenticated: time.Hour})
	defer l.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if uid, known := connOwner(s.(*limitedConn).Conn); !known || int(uid) != os.Getuid() {
		t.Fatalf("owner %d (known %v), want %d", uid, known, os.Getuid())
	}
}

// The connection's user is looked up (a scan of the machine's whole socket
// table, about 10 ms with a few thousand sockets) only when a cap is near
// and it decides which connection goes: an AI app's connections, each
// carrying the token at once, are accepted without it, so a busy machine
// does not queue them behind the scans (issue 16: cancels that reached
// Countersign after the approval timeout, their connections waiting to be
// accepted).
func TestOwnersAreLookedUpOnlyNearACap(t *testing.T) {
	u := newUserListener(t, serverLimits{MaxUnauthenticated: 10, MaxUnauthenticatedPerUser: 3, MaxConns: 20, Unauthenticated: time.Hour})
	var lookups atomic.Int64
	owner := u.l.owner
	u.l.owner = func(c net.Conn) (uint32, bool) {
		lookups.Add(1)
		return owner(c)
	}
	first := []userConn{u.dial(person, true), u.dial(person, true), u.dial(another, true)}
	if n := lookups.Load(); n != 0 {
		t.Fatalf("%d owner lookups for 3 connections under every cap, want none", n)
	}
	// The fourth would put the person at their cap: now users count,
	// and each connection is looked up once.
	u.dial(person, true)
	if n := lookups.Load(); n != 4 {
		t.Fatalf("%d owner lookups at the cap, want 4: the newcomer and the three before it", n)
	}
	if u.unauthOf(person) != 3 || u.unauthOf(another) != 1 {
		t.Fatalf("users found: person %d, another %d", u.unauthOf(person), u.unauthOf(another))
	}
	u.dial(person, true)
	if n := lookups.Load(); n != 5 {
		t.Fatalf("%d owner lookups, want 5: one more for the newcomer", n)
	}
	if u.isOpen(first[0]) || !u.isOpen(first[1]) || !u.isOpen(first[2]) {
		t.Fatal("the person's fourth connection without the token did not close their oldest")
	}
}

// An AI app opening more connections at once than its user's cap allows
// does not lose the newest-but-one to its own cap before they could carry
// the token: a connection that young is kept, under the total caps. Once
// it is older, the cap holds again.
func TestABurstOfOnesOwnConnectionsIsNotCut(t *testing.T) {
	u := newUserListener(t, serverLimits{MaxUnauthenticated: 10, MaxUnauthenticatedPerUser: 3, MaxConns: 20, Unauthenticated: time.Hour, YoungGrace: time.Hour})
	var burst []userConn
	for range 6 {
		burst = append(burst, u.dial(person, true))
	}
	for i, c := range burst {
		if !u.isOpen(c) {
			t.Fatalf("connection %d of the burst was closed by its user's cap", i)
		}
	}
	u.l.mu.Lock()
	u.l.lim.YoungGrace = 0
	u.l.mu.Unlock()
	u.dial(person, true)
	if u.isOpen(burst[0]) || u.unauthOf(person) != 6 {
		t.Fatalf("past the grace the cap did not close the oldest: oldest open %v, %d open", u.isOpen(burst[0]), u.unauthOf(person))
	}
}
