package relay

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/testenv"
	"github.com/countersign/countersign/internal/transport"
)

// clientSession opens a host session as the AI app named client, on an
// upstream the test plays, and returns its id and upstream.
func clientSession(t *testing.T, e *env, conns chan *pipeConn, client string) (string, *pipeConn, *http.Response) {
	t.Helper()
	resp := make(chan *http.Response, 1)
	go func() {
		resp <- e.post(context.Background(), "pipe", "", `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"`+client+`","version":"1"}}}`)
	}()
	select {
	case up := <-conns:
		up.next(t)
		up.in <- transport.Incoming{Raw: []byte(`{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"u","version":"1"}}}`)}
		r := <-resp
		readMessages(t, r)
		return r.Header.Get("Mcp-Session-Id"), up, r
	case r := <-resp:
		return "", nil, r // refused before dialling
	}
}

func isClosed(up *pipeConn) bool {
	select {
	case <-up.Done():
		return true
	default:
		return false
	}
}

func TestSessionsOfAnAIAppAreCapped(t *testing.T) {
	srv, conns := pipeServer("pipe")
	e := newEnv(t, []Server{srv}, func(o *Options) {
		o.MaxSessionsPerClient, o.MaxSessions, o.EvictAfter = 2, 3, time.Millisecond
	})
	first, up1, _ := clientSession(t, e, conns, "app")
	time.Sleep(5 * time.Millisecond) // first is the older idle one
	_, up2, _ := clientSession(t, e, conns, "app")

	// At the cap, the oldest idle session of the same AI app makes room.
	third, up3, _ := clientSession(t, e, conns, "app")
	if third == "" {
		t.Fatal("a new session was refused while an idle one could make room")
	}
	if !isClosed(up1) || isClosed(up2) {
		t.Fatalf("closed: oldest %v, second %v; want only the oldest closed", isClosed(up1), isClosed(up2))
	}
	r := e.post(context.Background(), "pipe", first, `{"jsonrpc":"2.0","id":9,"method":"ping"}`)
	r.Body.Close()
	if r.StatusCode != http.StatusNotFound {
		t.Errorf("the evicted session answered %d, want 404", r.StatusCode)
	}

	// A session whose AI app only listens (a GET stream open, no request)
	// is closed for room too, the one unused longest first: refusing the
	// new session instead would strand the AI app that is working now.
	var streams []*http.Response
	for _, sid := range e.sessionIDs() {
		streams = append(streams, e.get(context.Background(), "pipe", sid))
	}
	defer func() {
		for _, s := range streams {
			s.Body.Close()
		}
	}()
	e.waitGets(2)
	time.Sleep(5 * time.Millisecond)
	fourth, _, resp := clientSession(t, e, conns, "app")
	resp.Body.Close()
	if fourth == "" {
		t.Fatalf("status %d: a session whose AI app only listens did not make room", resp.StatusCode)
	}
	if !isClosed(up2) || isClosed(up3) {
		t.Fatalf("closed: second %v, third %v; want the one unused longest (the second)", isClosed(up2), isClosed(up3))
	}
}

// A session idle only a moment, between one answer and the AI app's next
// request, is in use: it is not closed to make room, and the new session
// is refused instead. (Closing it broke a busy AI app that opened more
// sessions than the cap, one request at a time on each.)
func TestASessionJustIdleIsNotClosedForRoom(t *testing.T) {
	srv, conns := pipeServer("pipe")
	e := newEnv(t, []Server{srv}, func(o *Options) {
		o.MaxSessionsPerClient, o.MaxSessions, o.EvictAfter = 2, 3, time.Hour
	})
	_, up1, _ := clientSession(t, e, conns, "app")
	_, up2, _ := clientSession(t, e, conns, "app")
	sid, _, resp := clientSession(t, e, conns, "app")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if sid != "" || resp.StatusCode != http.StatusTooManyRequests || !bytes.Contains(body, []byte("app already has 2 open sessions")) {
		t.Fatalf("status %d, session %q, %s; want 429 with a plain message", resp.StatusCode, sid, body)
	}
	if isClosed(up1) || isClosed(up2) {
		t.Fatal("a session idle only a moment was closed for room")
	}
	// Another AI app still gets one, up to the cap of all sessions.
	if other, _, resp := clientSession(t, e, conns, "other"); other == "" {
		t.Fatalf("another AI app was refused below the cap of all sessions: %d", resp.StatusCode)
	} else {
		resp.Body.Close()
	}
	sid, _, resp = clientSession(t, e, conns, "third")
	resp.Body.Close()
	if sid != "" || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("beyond the cap of all sessions: status %d", resp.StatusCode)
	}
}

// sessionIDs lists the open host sessions.
func (e *env) sessionIDs() []string {
	e.relay.mu.Lock()
	defer e.relay.mu.Unlock()
	var ids []string
	for id := range e.relay.sessions {
		ids = append(ids, id)
	}
	return ids
}

// waitGets waits until n sessions hold a GET stream.
func (e *env) waitGets(n int) {
	e.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		got := 0
		e.relay.mu.Lock()
		for _, s := range e.relay.sessions {
			s.mu.Lock()
			if len(s.gets) > 0 {
				got++
			}
			s.mu.Unlock()
		}
		e.relay.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d sessions hold a GET stream, want %d", got, n)
		}
	}
}

func TestADeleteWithoutTheTokenIsRefusedAndLoggedOnce(t *testing.T) {
	srv, conns := pipeServer("pipe")
	var logs testenv.LockedBuffer
	e := newEnv(t, []Server{srv}, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	sid, up, _ := clientSession(t, e, conns, "mcp-go-app")
	for range 3 {
		req, _ := http.NewRequest(http.MethodDelete, e.url("pipe"), nil)
		req.Header.Set("Mcp-Session-Id", sid) // and no Authorization, as mcp-go sends it
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("DELETE without the token: %d, want 401", resp.StatusCode)
		}
	}
	if isClosed(up) {
		t.Fatal("a DELETE without the token ended the session")
	}
	if n := strings.Count(logs.String(), "refused an AI app's request to end its session"); n != 1 {
		t.Fatalf("logged %d times, want once:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "client=mcp-go-app") || strings.Contains(logs.String(), testToken) {
		t.Fatalf("the log does not name the AI app, or names the token:\n%s", logs.String())
	}
}

func TestGetStreamsOfASessionAreCapped(t *testing.T) {
	srv, conns := pipeServer("pipe")
	e := newEnv(t, []Server{srv})
	sid, _ := pipeSession(t, e, conns)
	var streams []*http.Response
	for range maxGets + 1 {
		streams = append(streams, e.get(context.Background(), "pipe", sid))
	}
	defer func() {
		for _, s := range streams {
			s.Body.Close()
		}
	}()
	ended := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, streams[0].Body)
		ended <- err
	}()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the oldest GET stream beyond the cap is still open")
	}
}

// TestAnAbandonedSessionIsClosedWithinMinutes: an AI app that leaves
// without DELETE (mcp-go's is refused for want of the token) does not keep
// its upstream session, or a local server's process, for an hour.
func TestAnAbandonedSessionIsClosedWithinMinutes(t *testing.T) {
	srv, conns := pipeServer("pipe")
	e := newEnv(t, []Server{srv})
	_, up := pipeSession(t, e, conns)
	e.relay.reap(time.Now().Add(6 * time.Minute))
	select {
	case <-up.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a session abandoned six minutes ago is still open")
	}
}
