package guard

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/audit"
	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/policy"
	"github.com/countersign/countersign/internal/relay"
	"github.com/countersign/countersign/internal/transport"
)

// gateFunc adapts a function to relay.Gate.
type gateFunc func(ctx context.Context, c gate.Call) gate.Verdict

func (f gateFunc) Submit(ctx context.Context, c gate.Call) gate.Verdict { return f(ctx, c) }

// kinds lists the kind and outcome of a call's events, oldest first.
func kinds(recs []audit.Record) []string {
	var out []string
	for i := len(recs) - 1; i >= 0; i-- {
		out = append(out, strings.TrimSpace(string(recs[i].Kind)+" "+string(recs[i].Outcome)))
	}
	return out
}

// TestApprovedCallWhoseSessionEndsBeforeSendingIsClosed: when the session
// ends between the person's approval and the forwarding, the audit's last
// word on the call is not "approved": the call ends "not sent", and the
// server never gets it.
func TestApprovedCallWhoseSessionEndsBeforeSendingIsClosed(t *testing.T) {
	rf := newRelayFixture(t, func([]byte) string { return `{"content":[]}` })
	// A second relay over the same guard, whose gate ends the upstream
	// session right after the approval, before the relay forwards.
	up := &recordingConn{answer: func([]byte) string { return `{"content":[]}` }, in: make(chan transport.Incoming, 10), done: make(chan struct{})}
	srv := relay.Server{ID: "github", Name: "GitHub", Dial: func(context.Context) (transport.Conn, error) { return up, nil }}
	hs := httptest.NewUnstartedServer(nil)
	rf.port = hs.Listener.Addr().(*net.TCPAddr).Port
	g := gateFunc(func(ctx context.Context, c gate.Call) gate.Verdict {
		v := rf.g.Submit(ctx, c)
		if v.Approved() {
			up.Close()
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Second):
				t.Error("the session did not end when its upstream closed")
			}
		}
		return v
	})
	r, err := relay.New(relay.Options{Servers: []relay.Server{srv}, Gate: g, Filter: rf.g, Token: relayToken, Port: rf.port,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	hs.Config.Handler = r
	hs.Start()
	t.Cleanup(func() { hs.CloseClientConnections(); r.Close(); hs.Close() })

	answer := rf.call(3, `"name":"create_issue","arguments":{"owner":"DEFRA","repo":"ffc-pay","title":"x"}`)
	c := rf.waitCall()
	if err := rf.q.Decide(c.ID, gate.Decision{Approve: true}); err != nil {
		t.Fatal(err)
	}
	if got := rf.answer(answer); !strings.Contains(got, "error") {
		t.Errorf("host got %s", got)
	}
	for _, msg := range up.received() {
		if bytes.Contains(msg, []byte(`tools/call`)) {
			t.Fatalf("the server received the call: %s", msg)
		}
	}
	recs := rf.events(audit.Filter{CallID: c.ID})
	want := "[call_submitted call_decided approved call_result not_sent]"
	if got := kinds(recs); strings.Join(got, " ") != strings.Trim(want, "[]") {
		t.Fatalf("call %s in the audit: %v, want %s", c.ID, got, want)
	}
	if last := recs[0]; !last.IsError || last.Actor != audit.ActorApp || last.Reason == "" {
		t.Errorf("closing record %+v", last)
	}
}

// TestCallIDsAreUniqueAcrossRuns: two runs of the app's wiring on one audit
// file (the queue's ids continue after the log's LastCallID) never give
// two calls the same id.
func TestCallIDsAreUniqueAcrossRuns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	runIDs := func() map[string]bool {
		log, err := audit.Open(path, audit.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		defer log.Close()
		q := gate.New(gate.Options{Timeout: time.Minute, LastID: log.LastCallID()})
		defer q.Close()
		g := New(Options{Queue: q, Audit: log})
		pol, err := policy.New(policy.Config{Name: "Everything"})
		if err != nil {
			t.Fatal(err)
		}
		g.SetPolicies(map[string]*policy.Policy{"everything": pol})
		sub := q.Subscribe()
		defer sub.Close()
		go func() {
			for ev := range sub.Events() {
				if ev.Kind == gate.EventAdded {
					q.Decide(ev.Call.ID, gate.Decision{Approve: true})
				}
			}
		}()
		ids := map[string]bool{}
		for range 3 {
			v := g.Submit(context.Background(), gate.Call{Server: "everything", Tool: "echo", Arguments: json.RawMessage(`{"message":"hi"}`)})
			if !v.Approved() {
				t.Fatalf("verdict %+v", v)
			}
			g.Forwarded("everything", v.CallID)
			g.Result("everything", "tools/call", v.CallID, json.RawMessage(`{"content":[]}`), nil)
			g.Delivered("everything", v.CallID, true)
			ids[v.CallID] = true
		}
		// A call policy denies has an id too.
		v := g.Submit(context.Background(), gate.Call{Server: "nowhere", Tool: "echo"})
		ids[v.CallID] = true
		return ids
	}
	first, second := runIDs(), runIDs()
	for id := range second {
		if first[id] {
			t.Errorf("call id %s names a call of each run (first %v, second %v)", id, first, second)
		}
	}
	if len(first) != 4 || len(second) != 4 {
		t.Errorf("ids %v, %v", first, second)
	}
	// Every call in the file ended: the second run found nothing to repair.
	log, err := audit.Open(path, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	if r := log.Repaired(); len(r) != 0 {
		t.Errorf("calls left half-done: %+v", r)
	}
	if rep, err := log.Verify(context.Background()); err != nil || !rep.OK() {
		t.Errorf("Verify: %+v, %v", rep, err)
	}
}

// TestAuditFailureAtTheDecisionDeniesTheCall: when the decision cannot be
// written (the real file is locked by another process), the approved call
// is denied and the server never gets it.
func TestAuditFailureAtTheDecisionDeniesTheCall(t *testing.T) {
	rf := newRelayFixture(t, func([]byte) string { return `{"content":[]}` })
	answer := rf.call(5, `"name":"create_issue","arguments":{"owner":"DEFRA","repo":"ffc-pay","title":"x"}`)
	c := rf.waitCall() // the submitted record is written

	other, err := sql.Open("sqlite", rf.path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	if err := rf.q.Decide(c.ID, gate.Decision{Approve: true}); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-answer:
		if !strings.Contains(got, "could not write its audit log") {
			t.Errorf("host got %s", got)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the AI app got no answer")
	}
	for _, msg := range rf.up.received() {
		if bytes.Contains(msg, []byte(`tools/call`)) {
			t.Fatalf("the server received a call whose approval was not recorded: %s", msg)
		}
	}
	conn.ExecContext(context.Background(), `ROLLBACK`)
}

// TestQueuedRecordFailuresAreReported: a forwarded or result record that
// cannot be written is reported to the app like any audit failure.
func TestQueuedRecordFailuresAreReported(t *testing.T) {
	failed := make(chan error, 4)
	g := New(Options{Queue: gate.New(gate.Options{}), Audit: brokenAudit{}, AuditFailed: func(err error) { failed <- err },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	g.Forwarded("everything", "1")
	g.Result("everything", "tools/call", "1", json.RawMessage(`{"content":[]}`), nil)
	g.Delivered("everything", "1", true)
	for range 2 {
		select {
		case err := <-failed:
			if !strings.Contains(err.Error(), "disk full") {
				t.Errorf("reported %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a failed queued record was not reported")
		}
	}
}

// TestACallAnotherRejoinedEnds: when the AI app stops waiting, calls
// again, and the person then decides, the decision goes to the new call
// and the earlier one ends with it in the audit.
func TestACallAnotherRejoinedEnds(t *testing.T) {
	f := newFixture(t)
	sub := f.q.Subscribe()
	defer sub.Close()
	wait := func(kind gate.EventKind) gate.Call {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case ev := <-sub.Events():
				if ev.Kind == kind {
					return ev.Call
				}
			case <-deadline:
				t.Fatalf("no event %v", kind)
			}
		}
	}
	c := gate.Call{Server: "everything", ServerName: "Everything", Tool: "echo", Client: "Claude",
		Arguments: json.RawMessage(`{"message":"hi"}`), HostBudget: 50 * time.Millisecond}
	if v := <-f.submit(c); v.Outcome != gate.OutcomeAskAgain {
		t.Fatalf("first verdict %+v", v)
	}
	first := wait(gate.EventHostGone)
	c.HostBudget = 0
	again := f.submit(c)
	wait(gate.EventHostBack)
	if err := f.q.Decide(first.ID, gate.Decision{Approve: true}); err != nil {
		t.Fatal(err)
	}
	v := <-again
	if !v.Approved() || v.Earlier != first.ID || v.CallID == first.ID {
		t.Fatalf("retry verdict %+v", v)
	}
	got := strings.Join(kinds(f.events(audit.Filter{CallID: first.ID})), ", ")
	if want := "call_submitted, call_decided asked_to_call_again, call_decided approved"; got != want {
		t.Errorf("call %s in the audit: %s, want %s", first.ID, got, want)
	}
}
