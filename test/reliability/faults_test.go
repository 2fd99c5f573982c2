package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/audit"
	"github.com/countersign/countersign/internal/gate"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// faultyUpstream is an in-process MCP server over Streamable HTTP that
// misbehaves on a tools/call whose message is "fault:<kind>…": it answers
// 503, an HTML page or garbage, closes the connection in the middle of its
// event stream, or never answers ("hang"). Other messages reach a
// well-behaved server with an echo tool.
type faultyUpstream struct {
	url string
	rec *recorder
	// hung receives the context of each "hang" request, which ends when
	// Countersign gives up on it.
	hung chan context.Context
}

func startFaultyUpstream(t *testing.T) *faultyUpstream {
	t.Helper()
	u := &faultyUpstream{rec: newRecorder(), hung: make(chan context.Context, 16)}
	s := server.NewMCPServer("faulty", "1")
	s.AddTool(mcp.NewTool("echo", mcp.WithString("message")), func(_ context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("Echo: " + r.GetString("message", "")), nil
	})
	mcpHandler := server.NewStreamableHTTPServer(s)
	stop := make(chan struct{})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			mcpHandler.ServeHTTP(w, r)
			return
		}
		b, _ := io.ReadAll(r.Body)
		var m struct {
			Method string `json:"method"`
			Params struct {
				Arguments json.RawMessage `json:"arguments"`
			} `json:"params"`
		}
		json.Unmarshal(b, &m)
		msg := argMessage(m.Params.Arguments)
		if m.Method == "tools/call" {
			u.rec.add(msg)
		}
		kind, isFault := strings.CutPrefix(msg, "fault:")
		if m.Method != "tools/call" || !isFault {
			r.Body = io.NopCloser(bytes.NewReader(b))
			mcpHandler.ServeHTTP(w, r)
			return
		}
		kind, _, _ = strings.Cut(kind, ":")
		switch kind {
		case "5xx":
			http.Error(w, "upstream is overloaded", http.StatusServiceUnavailable)
		case "html":
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<!doctype html><html><body><h1>Sign in to continue</h1></body></html>")
		case "garbage":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, "}{\x00 not json at all")
		case "close":
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":")
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // the connection closes mid-event
		case "hang":
			u.hung <- r.Context()
			select {
			case <-r.Context().Done():
			case <-stop:
			}
		}
	}))
	t.Cleanup(func() {
		close(stop)
		front.CloseClientConnections()
		front.Close()
		mcpHandler.Shutdown(context.Background())
	})
	u.url = front.URL + "/mcp"
	return u
}

// faultyApp is the app with one server, "faulty" (a faultyUpstream), an
// approver that approves every call, and a client for AI apps' sessions
// that the test's end closes.
type faultyApp struct {
	up *faultyUpstream
	s  *setup
	in *instance
	ap *approver
	hc *http.Client
}

func startFaultyApp(t *testing.T) *faultyApp {
	t.Helper()
	up := startFaultyUpstream(t)
	s := newSetup(t, httpServer("faulty", up.url))
	in := startApp(t, s)
	f := &faultyApp{up: up, s: s, in: in, ap: approveAll(in.core.Queue), hc: newClient(t)}
	return f
}

// leaveHangingCall sends h a call that the faulty server takes and never
// answers, waits until it reaches the server, then closes the request as
// an AI app that gives up does, keeping its session. It returns the
// call's context at the server, which ends when Countersign stops the call.
func leaveHangingCall(t *testing.T, h *host, up *faultyUpstream) context.Context {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan []message, 1)
	go func() {
		a, _ := h.call(ctx, 1, "echo", map[string]string{"message": "fault:hang"})
		done <- a
	}()
	var upstreamCtx context.Context
	select {
	case upstreamCtx = <-up.hung:
	case <-time.After(60 * time.Second):
		t.Fatal("the approved call never reached the server")
	}
	cancel()
	<-done
	return upstreamCtx
}

// approveAll approves every call as sent.
func approveAll(q *gate.Queue) *approver {
	return startApprover(q, func(c gate.Call) { q.Decide(c.ID, gate.Decision{Approve: true}) })
}

// answerWithin makes one call and waits for its answer, failing the test
// if none comes within a generous deadline.
func answerWithin(t *testing.T, h *host, id int, tool string, args any) message {
	t.Helper()
	type got struct {
		answers []message
		err     error
	}
	ch := make(chan got, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		a, err := h.call(ctx, id, tool, args)
		ch <- got{a, err}
	}()
	select {
	case g := <-ch:
		if g.err != nil {
			t.Fatalf("call %d: the response ended badly: %v", id, g.err)
		}
		if len(g.answers) != 1 {
			t.Fatalf("call %d: %d answers, want exactly 1", id, len(g.answers))
		}
		return g.answers[0]
	case <-time.After(90 * time.Second):
		t.Fatalf("call %d: no answer within 90 s: the call hangs", id)
	}
	return message{}
}

// wantEcho makes one call to the echo tool with msg and fails the test,
// going on, unless the answer is its echo.
func wantEcho(t *testing.T, h *host, id int, msg string) {
	t.Helper()
	if text, isErr := answerWithin(t, h, id, "echo", map[string]string{"message": msg}).text(); isErr || text != "Echo: "+msg {
		t.Errorf("%s: answer %q (error %v), want the echo", msg, text, isErr)
	}
}

// storyOf finds the audit story of the call whose message argument is msg.
func storyOf(t *testing.T, sts map[string]*callStory, msg string) *callStory {
	t.Helper()
	var found *callStory
	for _, st := range sts {
		if len(st.submitted) > 0 && argMessage(st.submitted[0].Arguments) == msg {
			if found != nil {
				t.Errorf("audit: %q was submitted under two call ids", msg)
			}
			found = st
		}
	}
	if found == nil {
		t.Fatalf("audit: no call with message %q", msg)
	}
	return found
}

// wantRanAndFailed checks the audit story of an approved call that reached
// the server and ended in an error.
func wantRanAndFailed(t *testing.T, st *callStory, what string) {
	t.Helper()
	if len(st.decided) != 1 || st.decided[0].Outcome != audit.OutcomeApproved {
		t.Errorf("%s: decisions %v, want one approval", what, outcomes(st.decided))
	}
	if len(st.forwarded) != 1 {
		t.Errorf("%s: %d forwarded records, want 1", what, len(st.forwarded))
	}
	if len(st.results) != 1 || !st.results[0].IsError {
		t.Errorf("%s: result records %v, want one error", what, st.results)
	}
}

func outcomes(recs []audit.Record) []audit.Outcome {
	var out []audit.Outcome
	for _, r := range recs {
		out = append(out, r.Outcome)
	}
	return out
}

// TestUpstreamHTTPFaults: a server that answers 503, HTML or garbage, or
// closes its stream mid-event, gives the AI app one clear error, and the
// audit records the call's result as an error; the server stays usable.
func TestUpstreamHTTPFaults(t *testing.T) {
	enabled(t)
	f := startFaultyApp(t)

	kinds := []string{"5xx", "html", "garbage", "close"}
	for i, kind := range kinds {
		h := f.in.openSession(t, f.hc, "faulty")
		a := answerWithin(t, h, i+1, "echo", map[string]string{"message": "fault:" + kind})
		text, isErr := a.text()
		if !isErr || text == "" {
			t.Errorf("%s: answer %q (error %v), want an error that says what happened", kind, text, isErr)
		}
		t.Logf("%s: the AI app was told %q", kind, text)
		// The session still works after the fault.
		wantEcho(t, h, 100+i, "after "+kind)
		h.close()
	}
	f.ap.stop()
	f.in.stopCleanly(t)
	sts := stories(auditRecords(t, f.s.dataDir))
	for _, kind := range kinds {
		wantRanAndFailed(t, storyOf(t, sts, "fault:"+kind), kind)
		if n := f.up.rec.count("fault:" + kind); n != 1 {
			t.Errorf("%s: the server was sent the call %d times, want once", kind, n)
		}
	}
}

// TestStdioChildKilled: the real server-everything, started by
// Countersign over stdio, is killed while it runs an approved call. The AI
// app gets one clear error, the audit records the result as an error, and
// a new session starts a new server.
func TestStdioChildKilled(t *testing.T) {
	enabled(t)
	dir := peersDir(t)
	if dir == "" {
		t.Skip("needs the real npm peers (COUNTERSIGN_PEERS)")
	}
	logPath := filepath.Join(t.TempDir(), "stdio.log")
	cmd, args := everythingStdio(dir, logPath)
	s := newSetup(t, stdioServer("evs", cmd, args...))
	in := startApp(t, s)
	ap := approveAll(in.core.Queue)
	hc := newClient(t)
	h := in.openSession(t, hc, "evs")
	var pids []int
	waitFor(t, "server-everything to start", func() bool {
		pids = childrenRunning("server-everything")
		return len(pids) == 1
	})
	type got struct {
		m   message
		err error
	}
	ch := make(chan got, 1)
	go func() {
		a, err := h.call(context.Background(), 7, "trigger-long-running-operation", map[string]any{"duration": 60, "steps": 60, "message": "long"})
		if err == nil && len(a) != 1 {
			err = fmt.Errorf("%d answers, want exactly 1", len(a))
		}
		var m message
		if len(a) > 0 {
			m = a[0]
		}
		ch <- got{m, err}
	}()
	waitFor(t, "the call to reach the server", func() bool {
		b, _ := os.ReadFile(logPath)
		return bytes.Contains(b, []byte("trigger-long-running-operation"))
	})
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case g := <-ch:
		if g.err != nil {
			t.Fatal(g.err)
		}
		text, isErr := g.m.text()
		if !isErr || text == "" {
			t.Errorf("answer %q (error %v), want an error that says the server stopped", text, isErr)
		}
		t.Logf("the AI app was told %q", text)
	case <-time.After(90 * time.Second):
		t.Fatal("no answer within 90 s after the server was killed: the call hangs")
	}
	h.close()

	// A new session gets a new server.
	h2 := in.openSession(t, hc, "evs")
	wantEcho(t, h2, 1, "after the kill")
	h2.close()
	ap.stop()
	in.stopCleanly(t)
	sts := stories(auditRecords(t, s.dataDir))
	wantRanAndFailed(t, storyOf(t, sts, "long"), "killed server")
}

// TestHostLeavesWithCallsWaiting: an AI app with calls waiting for the
// person closes its requests and ends its session. Every call ends as
// disconnected (or cancelled), leaves the review queue, and nothing
// reaches the server.
func TestHostLeavesWithCallsWaiting(t *testing.T) {
	enabled(t)
	mem, s, in, hc := startMemApp(t)
	h := in.openSession(t, hc, "mem")
	const n = 8
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	answers := make([][]message, n)
	for i := range n {
		wg.Go(func() {
			answers[i], _ = h.call(ctx, i+1, "echo", map[string]string{"message": fmt.Sprintf("left %d", i)})
		})
	}
	waitFor(t, "the calls to wait for the person", func() bool { return len(in.core.Queue.Pending()) == n })
	pending := in.core.Queue.Pending()
	cancel()  // the AI app closes its requests…
	h.close() // …and ends its session
	wg.Wait()
	waitFor(t, "the review queue to empty", func() bool { return len(in.core.Queue.Pending()) == 0 })
	for _, c := range pending {
		if err := in.core.Queue.Decide(c.ID, gate.Decision{Approve: true}); err == nil {
			t.Errorf("call %s could still be approved after the AI app left", c.ID)
		}
	}
	in.stopCleanly(t)
	sts := stories(auditRecords(t, s.dataDir))
	for i := range n {
		msg := fmt.Sprintf("left %d", i)
		st := storyOf(t, sts, msg)
		// Closing the requests and ending the session race: which one
		// Countersign hears first decides the outcome.
		if len(st.decided) != 1 {
			t.Errorf("%s: decisions %v, want one", msg, outcomes(st.decided))
		} else if d := st.decided[0]; d.Outcome != audit.OutcomeDisconnected &&
			!(d.Outcome == audit.OutcomeCancelled && strings.Contains(d.Reason, "ended the session")) {
			t.Errorf("%s: decided %s (%s), want disconnected, or cancelled as the session ended", msg, d.Outcome, d.Reason)
		}
		if len(st.forwarded)+len(st.results) != 0 {
			t.Errorf("%s: recorded as forwarded", msg)
		}
		if mem.rec.count(msg) != 0 {
			t.Errorf("%s reached the server", msg)
		}
		if len(answers[i]) != 0 {
			t.Errorf("%s: the AI app that left got %d answers", msg, len(answers[i]))
		}
	}
}

// TestStopWithCallsWaitingAndStartAgain: the app is stopped while calls
// wait for the person; each AI app is told, Run returns, and the app
// starts again on the same data with an audit chain that verifies and
// every waiting call ended as shut down.
func TestStopWithCallsWaitingAndStartAgain(t *testing.T) {
	enabled(t)
	mem, s, in, hc := startMemApp(t)
	h := in.openSession(t, hc, "mem")
	const n = 20
	var wg sync.WaitGroup
	answers := make([][]message, n)
	for i := range n {
		wg.Go(func() {
			answers[i], _ = h.call(context.Background(), i+1, "echo", map[string]string{"message": fmt.Sprintf("waiting %d", i)})
		})
	}
	waitFor(t, "the calls to wait for the person", func() bool { return len(in.core.Queue.Pending()) == n })
	in.stopHolding(t, "calls waiting")
	wg.Wait()
	for i, a := range answers {
		if len(a) != 1 {
			t.Errorf("waiting %d: %d answers, want 1", i, len(a))
			continue
		}
		if text, isErr := a[0].text(); !isErr || !strings.Contains(text, "shutting down") {
			t.Errorf("waiting %d: answer %q (error %v), want one saying Countersign is shutting down", i, text, isErr)
		}
	}

	// Start again on the same settings, data and keychain.
	in2 := startApp(t, s)
	ap := approveAll(in2.core.Queue)
	h2 := in2.openSession(t, hc, "mem")
	wantEcho(t, h2, 1, "after the restart")
	h2.close()
	ap.stop()
	in2.stopCleanly(t)
	recs := auditRecords(t, s.dataDir)
	checkCallIDsUnique(t, recs)
	byRun := runs(recs)
	if len(byRun) != 2 {
		t.Fatalf("the audit holds %d runs of the app, want 2", len(byRun))
	}
	sts := stories(byRun[0])
	for i := range n {
		msg := fmt.Sprintf("waiting %d", i)
		st := storyOf(t, sts, msg)
		if len(st.decided) != 1 || st.decided[0].Outcome != audit.OutcomeShutDown {
			t.Errorf("%s: decisions %v, want one: shut down", msg, outcomes(st.decided))
		}
		if mem.rec.count(msg) != 0 {
			t.Errorf("%s reached the server", msg)
		}
	}
	wantRanAndSucceeded(t, storyOf(t, stories(byRun[1]), "after the restart"), "after the restart")
}

// runs splits the audit's records at each start of the app.
func runs(recs []audit.Record) [][]audit.Record {
	var out [][]audit.Record
	for _, r := range recs {
		if r.Kind == audit.KindAppStarted || len(out) == 0 {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], r)
	}
	return out
}

// wantRanAndSucceeded checks the audit story of an approved call that ran.
func wantRanAndSucceeded(t *testing.T, st *callStory, what string) {
	t.Helper()
	if len(st.decided) != 1 || st.decided[0].Outcome != audit.OutcomeApproved {
		t.Errorf("%s: decisions %v, want one approval", what, outcomes(st.decided))
	}
	if len(st.forwarded) != 1 || len(st.results) != 1 || st.results[0].IsError {
		t.Errorf("%s: %d forwarded and %d result records, want one each, not an error", what, len(st.forwarded), len(st.results))
	}
}

// TestUpstreamNeverAnswersHostEndsSession: a server takes an approved call
// and never answers; the AI app closes its request and ends its session.
// Countersign stops the call at the server, and the audit ends the call's
// story.
func TestUpstreamNeverAnswersHostEndsSession(t *testing.T) {
	enabled(t)
	f := startFaultyApp(t)
	h := f.in.openSession(t, f.hc, "faulty")
	upstreamCtx := leaveHangingCall(t, h, f.up)
	h.close()
	select {
	case <-upstreamCtx.Done():
	case <-time.After(60 * time.Second):
		t.Error("the AI app ended its session, yet a minute later the call still runs at the server")
	}
	f.ap.stop()
	f.in.stopCleanly(t)
	st := storyOf(t, stories(auditRecords(t, f.s.dataDir)), "fault:hang")
	if len(st.forwarded) != 1 || len(st.results) != 1 {
		t.Errorf("the call whose session ended: %d forwarded and %d closing records, want 1 and 1", len(st.forwarded), len(st.results))
	}
}
