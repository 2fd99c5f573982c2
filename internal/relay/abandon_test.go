package relay

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// waitResult waits until the filter has recorded a result matching want.
func (f *recordingFilter) waitResult(t *testing.T, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		f.mu.Lock()
		found := slices.ContainsFunc(f.results, func(r string) bool { return strings.HasPrefix(r, "tools/call ") && strings.HasSuffix(r, want) })
		results := append([]string(nil), f.results...)
		f.mu.Unlock()
		if found {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the filter recorded %q, want a tools/call %s", results, want)
		}
	}
}

// wantCancelled checks that the upstream's next message cancels upID.
func wantCancelled(t *testing.T, up *pipeConn, upID string) {
	t.Helper()
	if got := up.next(t); !bytes.Contains(got, []byte(`"notifications/cancelled"`)) || !bytes.Contains(got, []byte(`"requestId":`+upID)) {
		t.Fatalf("upstream got %s, want a cancellation of %s", got, upID)
	}
}

func TestAForwardedCallThatIsNeverAnsweredEnds(t *testing.T) {
	srv, conns := pipeServer("pipe")
	f := &recordingFilter{}
	e := newEnv(t, []Server{srv}, func(o *Options) { o.Filter = f; o.CallTimeout = 200 * time.Millisecond })
	sid, up := pipeSession(t, e, conns)
	resp := make(chan *http.Response, 1)
	go func() {
		resp <- e.post(context.Background(), "pipe", sid, `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{}}}`)
	}()
	upID := string(field(t, up.next(t), "id")) // approved and forwarded; the server never answers
	msgs := readMessages(t, <-resp)
	if len(msgs) != 1 || !bytes.Contains(msgs[0], []byte(`"id":5`)) || !bytes.Contains(msgs[0], []byte("did not answer within")) {
		t.Fatalf("host got %s, want an error answer saying the server did not answer", msgs)
	}
	wantCancelled(t, up, upID)
	f.waitResult(t, "error") // the audit records how the call ended
}

func TestClosingTheHostStreamCancelsTheForwardedCall(t *testing.T) {
	for _, tt := range []struct {
		name   string
		accept string
	}{
		{"a JSON response", "application/json"},
		{"a resumable event stream, once it is not resumed", "text/event-stream"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, conns := pipeServer("pipe")
			f := &recordingFilter{}
			e := newEnv(t, []Server{srv}, func(o *Options) { o.Filter = f; o.resumeGrace = 100 * time.Millisecond })
			sid, up := pipeSession(t, e, conns)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				r, err := func() (*http.Response, error) {
					req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.url("pipe"),
						strings.NewReader(`{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"echo","arguments":{}}}`))
					req.Header.Set("Authorization", "Bearer "+testToken)
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Accept", tt.accept)
					req.Header.Set("Mcp-Session-Id", sid)
					req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
					return http.DefaultClient.Do(req)
				}()
				if err == nil {
					r.Body.Close()
				}
			}()
			upID := string(field(t, up.next(t), "id"))
			cancel() // the AI app goes away while the server works
			<-done
			wantCancelled(t, up, upID)
			f.waitResult(t, "error")
			e.relay.mu.Lock()
			s := e.relay.sessions[sid]
			e.relay.mu.Unlock()
			if idle := s.idleSince(time.Now().Add(time.Hour)); idle == 0 {
				t.Error("the session still counts the cancelled call as in flight")
			}
		})
	}
}
