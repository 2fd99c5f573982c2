package relay

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestLimitsChangeWhileTheRelayRuns: SetLimits, which the app calls when
// the organisation's policy changes, applies to the next message, the next
// forwarded request and the next session, without a restart.
func TestLimitsChangeWhileTheRelayRuns(t *testing.T) {
	srv, conns := pipeServer("pipe")
	f := &recordingFilter{}
	e := newEnv(t, []Server{srv}, func(o *Options) {
		o.Filter = f
		o.MaxSessions, o.EvictAfter = 8, time.Hour
	})
	if got := e.relay.Limits(); got != (Limits{DefaultCallTimeout, DefaultMaxMessage, DefaultMaxInFlight, DefaultMaxSessionsPerClient}) {
		t.Fatalf("limits at start %+v, want the defaults", got)
	}
	// A body of n bytes, read whole unless refused for its size (it is
	// then refused for what it holds: 400).
	send := func(n int) *http.Response {
		body := `{"x":"` + strings.Repeat("a", n-8) + `"}`
		req, _ := http.NewRequest(http.MethodPost, e.url("pipe"), strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}

	// The message limit: 2 MB is within the built-in 4 MB, not within 1 MB.
	if resp := send(2 << 20); resp.StatusCode == http.StatusRequestEntityTooLarge {
		t.Fatal("2 MB refused under the built-in limit")
	}
	e.relay.SetLimits(Limits{MaxMessage: 1 << 20, CallTimeout: 200 * time.Millisecond, MaxSessionsPerClient: 1})
	resp := send(2 << 20)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !bytes.Contains(body, []byte("up to 1 MB")) {
		t.Fatalf("2 MB under a 1 MB limit: status %d, %s; want 413 naming 1 MB", resp.StatusCode, body)
	}
	if got := e.relay.Limits(); got.MaxInFlight != DefaultMaxInFlight || got.MaxSessionsPerClient != 1 {
		t.Fatalf("limits %+v: the fields left zero keep the defaults", got)
	}

	// The call limit: a request forwarded after the change ends then.
	sid, up := pipeSession(t, e, conns)
	answered := make(chan *http.Response, 1)
	go func() {
		answered <- e.post(context.Background(), "pipe", sid, `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{}}}`)
	}()
	upID := string(field(t, up.next(t), "id")) // forwarded; the server never answers
	msgs := readMessages(t, <-answered)
	if len(msgs) != 1 || !bytes.Contains(msgs[0], []byte("did not answer within 200ms")) {
		t.Fatalf("host got %s, want an error answer after the new call limit", msgs)
	}
	wantCancelled(t, up, upID)
	f.waitResult(t, "error")

	// The session cap: one session per AI app, and it is in use, so a
	// second is refused.
	first, _, _ := clientSession(t, e, conns, "app")
	if first == "" {
		t.Fatal("the first session was refused")
	}
	second, _, resp2 := clientSession(t, e, conns, "app")
	b2, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if second != "" || resp2.StatusCode != http.StatusTooManyRequests || !bytes.Contains(b2, []byte("app already has 1 open sessions")) {
		t.Fatalf("a second session under a cap of 1: status %d, %s", resp2.StatusCode, b2)
	}

	// Raising them again applies as well.
	e.relay.SetLimits(Limits{MaxMessage: 8 << 20, MaxSessionsPerClient: 2})
	if resp := send(6 << 20); resp.StatusCode == http.StatusRequestEntityTooLarge {
		t.Fatal("6 MB refused under an 8 MB limit")
	}
	if got := e.relay.Limits(); got.MaxInFlight != DefaultMaxInFlight || got.CallTimeout != DefaultCallTimeout {
		t.Fatalf("limits %+v", got)
	}
	third, _, resp3 := clientSession(t, e, conns, "app")
	resp3.Body.Close()
	if third == "" {
		t.Fatalf("a second session under a cap of 2: status %d", resp3.StatusCode)
	}
}

// TestTheBudgetHoldsAtLeastOneMessage: a budget for all messages smaller
// than one message would refuse every message of the largest size.
func TestTheBudgetHoldsAtLeastOneMessage(t *testing.T) {
	l := Limits{MaxMessage: 64 << 20, MaxInFlight: 32 << 20}.withDefaults()
	if l.MaxInFlight != 64<<20 {
		t.Fatalf("in flight %d, want at least one message (%d)", l.MaxInFlight, 64<<20)
	}
}
