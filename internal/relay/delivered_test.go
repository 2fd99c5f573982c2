package relay

import (
	"bufio"
	"context"
	"net/http"
	"slices"
	"strings"
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
// when the grace for a resume ends, or the AI app ends the session, the
// filter is told the answer was not delivered, once, after the call's
// result.
func TestAnAnswerWaitingForAResumeThatNeverComesIsNotDelivered(t *testing.T) {
	for _, end := range []string{"the grace ends", "the session ends"} {
		t.Run(end, func(t *testing.T) {
			srv, conns := pipeServer("pipe")
			f := &recordingFilter{}
			e := newEnv(t, []Server{srv}, func(o *Options) {
				o.Filter = f
				if end == "the grace ends" {
					o.resumeGrace = 500 * time.Millisecond
				}
			})
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
			for deadline := time.Now().Add(10 * time.Second); s.detachedStreams() == 0; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the relay never noticed the broken stream")
				}
			}
			up.in <- transport.Incoming{Raw: []byte(`{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"ran"}]}}`)}
			if end == "the session ends" {
				req, _ := http.NewRequest(http.MethodDelete, e.url("pipe"), nil)
				req.Header.Set("Authorization", "Bearer "+testToken)
				req.Header.Set("Mcp-Session-Id", sid)
				r, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				r.Body.Close()
			}
			got := f.waitDelivered(t)
			f.mu.Lock()
			forwarded, results := slices.Clone(f.forwarded), slices.Clone(f.results)
			f.mu.Unlock()
			callID := strings.TrimPrefix(forwarded[0], "pipe ")
			// On a slow machine the grace may end before the server's
			// answer comes: then the relay's own answer is the one lost.
			if !slices.Equal(got, []string{callID + " false"}) || len(results) != 1 || !strings.HasPrefix(results[0], "tools/call "+callID+" ") {
				t.Fatalf("filter told %q after results %q, want one not delivered after the call's result", got, results)
			}
		})
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

// TestABrokenOffStreamHoldingAnAnswerIsClosedInTime: a stream broken off
// with an answer queued and nothing forwarded any more still gets the
// resume grace, after which the answer is known not to have been
// delivered; without it the call's closing record would wait forever.
func TestABrokenOffStreamHoldingAnAnswerIsClosedInTime(t *testing.T) {
	s := &session{r: &Relay{o: Options{resumeGrace: 50 * time.Millisecond}}, inflight: map[string]*request{}, byHostID: map[string]*request{}}
	st := newStream(true)
	s.resume.track(st)
	told := make(chan bool, 1)
	st.pushAnswer([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`), []byte("1"), 0, func(delivered bool) { told <- delivered })
	s.streamClosed(st, st.detach())
	select {
	case delivered := <-told:
		if delivered {
			t.Fatal("told delivered")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the answer waited past the grace with nobody told")
	}
}
