package relay

import (
	"bufio"
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/transport"
)

// waitDelivered waits until the filter has been told of the call's fate
// and returns what it was told ("callID true|false"), all of it.
func (f *recordingFilter) waitDelivered(t *testing.T) []string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		f.mu.Lock()
		got := slices.Clone(f.delivered)
		f.mu.Unlock()
		if len(got) > 0 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatal("the filter was never told whether the answer reached the AI app")
		}
	}
}

// TestAnAnswerWaitingForAResumeThatNeverComesIsNotDelivered: the server
// answers while the AI app's stream is broken off; nobody resumes it, and
// when the grace for a resume ends the filter is told the answer was not
// delivered, after it was given the server's result, and once.
func TestAnAnswerWaitingForAResumeThatNeverComesIsNotDelivered(t *testing.T) {
	srv, conns := pipeServer("pipe")
	f := &recordingFilter{}
	e := newEnv(t, []Server{srv}, func(o *Options) { o.Filter = f; o.resumeGrace = 300 * time.Millisecond })
	sid, up := pipeSession(t, e, conns)

	ctx, hangUp := context.WithCancel(context.Background())
	resp := e.post(ctx, "pipe", sid, `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{}}}`,
		"Mcp-Protocol-Version", "2025-11-25")
	sent := up.next(t) // approved at once and forwarded under id 2
	if string(field(t, sent, "id")) != "2" {
		t.Fatalf("upstream got %s", sent)
	}
	readExactly(t, bufio.NewReader(resp.Body), "id: 2-1\ndata: \n\n")
	hangUp()
	resp.Body.Close()
	s := e.session(sid)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if s.detachedStreams() > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the relay never noticed the broken stream")
		}
	}
	up.in <- transport.Incoming{Raw: []byte(`{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"ran"}]}}`)}
	got := f.waitDelivered(t)
	f.mu.Lock()
	results := slices.Clone(f.results)
	f.mu.Unlock()
	callID := results[0][len("tools/call ") : len(results[0])-len(" result")]
	if !slices.Equal(got, []string{callID + " false"}) || len(results) != 1 {
		t.Fatalf("filter told %q after results %q, want one not delivered after the server's result", got, results)
	}
}

// TestAnAnswerTheAIAppReadIsDelivered: the filter is told an answer was
// delivered once it is written to the AI app's response.
func TestAnAnswerTheAIAppReadIsDelivered(t *testing.T) {
	srv, conns := pipeServer("pipe")
	f := &recordingFilter{}
	e := newEnv(t, []Server{srv}, func(o *Options) { o.Filter = f })
	sid, up := pipeSession(t, e, conns)
	answered := make(chan [][]byte, 1)
	go func() {
		answered <- readMessages(t, e.post(context.Background(), "pipe", sid, `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{}}}`))
	}()
	up.next(t)
	up.in <- transport.Incoming{Raw: []byte(`{"jsonrpc":"2.0","id":2,"result":{"content":[]}}`)}
	if msgs := <-answered; len(msgs) != 1 {
		t.Fatalf("the AI app got %q", msgs)
	}
	if got := f.waitDelivered(t); len(got) != 1 || got[0][len(got[0])-5:] != " true" {
		t.Fatalf("filter told %q", got)
	}
}

// session returns the relay's session sid.
func (e *env) session(sid string) *session {
	e.t.Helper()
	e.relay.mu.Lock()
	defer e.relay.mu.Unlock()
	s := e.relay.sessions[sid]
	if s == nil {
		e.t.Fatalf("no session %s", sid)
	}
	return s
}

// detachedStreams counts the session's streams waiting for a resume.
func (s *session) detachedStreams() int {
	n := 0
	for _, st := range s.resume.all() {
		if st.isDetached() {
			n++
		}
	}
	return n
}

// TestACancelBeforeTheCallIsHeldIsNotLost is the cancel twin of
// TestACallWhoseHostLeftBeforeItWasHeldNeverRuns: notifications/cancelled
// that arrives between the request and the gate holding it ends the call
// as cancelled; the person is never shown it and the server never gets it.
func TestACancelBeforeTheCallIsHeldIsNotLost(t *testing.T) {
	srv, conns := pipeServer("pipe")
	e := newEnv(t, []Server{srv}) // the person approves at once
	sid, up := pipeSession(t, e, conns)

	release := make(chan struct{})
	holdStarts = func() { <-release }
	defer func() { holdStarts = func() {} }()
	answered := make(chan [][]byte, 1)
	go func() {
		answered <- readMessages(t, e.post(context.Background(), "pipe", sid, `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"delete_repository","arguments":{}}}`))
	}()
	s := e.session(sid)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		s.mu.Lock()
		n := len(s.byHostID)
		s.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the relay never took the call")
		}
	}
	r := e.post(context.Background(), "pipe", sid, `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":4,"reason":"changed my mind"}}`)
	r.Body.Close()
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("cancel answered %s", r.Status)
	}
	close(release)
	select {
	case msgs := <-answered:
		if len(msgs) != 1 {
			t.Fatalf("the AI app got %q", msgs)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the cancelled call is still held")
	}
	e.mu.Lock()
	events := slices.Clone(e.events)
	e.mu.Unlock()
	for _, ev := range events {
		if ev.Kind == gate.EventAdded {
			t.Fatalf("the person was shown a call the AI app had cancelled: %+v", ev.Call)
		}
	}
	select {
	case m := <-up.sent:
		t.Fatalf("the server got %s after the AI app cancelled it", m)
	case <-time.After(200 * time.Millisecond):
	}
}
