package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/audit"
	"github.com/countersign/countersign/internal/gate"
)

// plan is what happens to one call in the load test.
type plan int

const (
	planApprove    plan = iota // the person approves it
	planEdit                   // the person changes its arguments, then approves
	planDeny                   // the person denies it
	planTimeout                // nobody decides; the approval timeout ends it
	planCancel                 // the AI app sends notifications/cancelled while it waits
	planDisconnect             // the AI app closes its request while it waits
)

var planNames = [...]string{"approve", "edit", "deny", "time out", "cancel", "disconnect"}

func (p plan) String() string { return planNames[p] }

// pick chooses a plan: mostly decisions by the person, a few cancelled or
// abandoned calls, and about one call in 200 left to time out.
func pick(r *rand.Rand) plan {
	switch n := r.IntN(1000); {
	case n < 5:
		return planTimeout
	case n < 45:
		return planCancel
	case n < 85:
		return planDisconnect
	case n < 235:
		return planEdit
	case n < 435:
		return planDeny
	}
	return planApprove
}

// auditOutcome is the decision the audit must record for a plan.
func (p plan) auditOutcome() audit.Outcome {
	switch p {
	case planApprove, planEdit:
		return audit.OutcomeApproved
	case planDeny:
		return audit.OutcomeDenied
	case planTimeout:
		return audit.OutcomeTimedOut
	case planCancel:
		return audit.OutcomeCancelled
	}
	return audit.OutcomeDisconnected
}

// loadCall is one call of the load test and what came of it.
type loadCall struct {
	tag    string // the call's "message" argument, unique in the run
	server string
	plan   plan
	seen   chan struct{} // closed when the call waits in the review queue
	// deadline is when the approval timeout ends the call, set before
	// seen is closed; acted is when the AI app's cancel or disconnect was
	// done on its side.
	deadline, acted time.Time
	answers         []message
	err             error
	took            time.Duration
}

// raced reports whether the approval timeout may have ended the call before
// Countersign heard of the AI app's cancel or disconnect: the AI app acted
// after the deadline (for a disconnect, which Countersign notices a little
// later, close to it). Then "timed out" is the right outcome too.
func (c *loadCall) raced() bool {
	switch c.plan {
	case planCancel:
		return c.acted.After(c.deadline)
	case planDisconnect:
		return c.acted.After(c.deadline.Add(-5 * time.Second))
	}
	return false
}

// edited is the message the person puts in place of tag.
func edited(tag string) string { return "edited " + tag }

// TestLoad drives 50 AI-app sessions of 200 tool calls each through the app
// as it runs (guard, audit on a real SQLite file, pins, relay, listener),
// with the person approving, editing, denying and leaving calls, and AI apps
// cancelling and abandoning some; then checks that every call got exactly
// one answer, the audit tells each call's story once, the chain verifies,
// and the servers ran exactly the approved calls with the approved
// arguments.
func TestLoad(t *testing.T) {
	enabled(t)
	const sessions, perSessionBase, inFlight = 50, 200, 4
	perSession := perSessionBase * scale(t)

	mem := startMemUpstream(t)
	servers := []string{httpServer("mem", mem.url)}
	recorders := map[string]*recorder{"mem": mem.rec}
	// Most sessions talk to the in-process server; a few to the real
	// server-everything, over HTTP and over stdio (one child per session).
	bySession := make([]string, sessions)
	for i := range bySession {
		bySession[i] = "mem"
	}
	stdioLogs := map[string]string{}
	if dir := peersDir(t); dir != "" {
		recorders["evh"] = newRecorder()
		servers = append(servers, httpServer("evh", startEverythingHTTP(t, dir, recorders["evh"])))
		for i := 0; i < 4; i++ {
			bySession[i] = "evh"
		}
		for i := 4; i < 7; i++ {
			id := fmt.Sprintf("evs%d", i)
			recorders[id] = newRecorder()
			stdioLogs[id] = filepath.Join(t.TempDir(), id+".log")
			cmd, args := everythingStdio(dir, stdioLogs[id])
			servers = append(servers, stdioServer(id, cmd, args...))
			bySession[i] = id
		}
	} else {
		t.Log("COUNTERSIGN_PEERS not set: every session uses the in-process server")
	}
	s := newSetup(t, servers...)
	rssBefore := rssKB()
	in := startApp(t, s)

	// Every call, by tag, planned up front so the approver knows what the
	// person does with it.
	calls := map[string]*loadCall{}
	var order []*loadCall
	for sess := 0; sess < sessions; sess++ {
		r := rand.New(rand.NewPCG(uint64(sess), 16))
		for i := 0; i < perSession; i++ {
			c := &loadCall{tag: fmt.Sprintf("s%d-c%d", sess, i), server: bySession[sess], plan: pick(r), seen: make(chan struct{})}
			calls[c.tag] = c
			order = append(order, c)
		}
	}

	var decided, refused, seenLag atomic.Int64
	ap := startApprover(in.core.Queue, func(c gate.Call) {
		if lag := int64(time.Since(c.Received)); lag > seenLag.Load() {
			seenLag.Store(lag) // racy max, good enough for a figure
		}
		lc := calls[argMessage(c.Arguments)]
		if lc == nil {
			t.Errorf("the review queue shows a call nobody made: %s", c.Arguments)
			return
		}
		lc.deadline = c.Deadline
		close(lc.seen)
		// The person takes a moment to read.
		time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
		var d gate.Decision
		switch lc.plan {
		case planApprove:
			d = gate.Decision{Approve: true}
		case planEdit:
			args, _ := json.Marshal(map[string]string{"message": edited(lc.tag)})
			d = gate.Decision{Approve: true, Arguments: args}
		case planDeny:
			d = gate.Decision{Reason: "not now"}
		default:
			return // left for the timeout, or for the AI app to cancel
		}
		decided.Add(1)
		if err := in.core.Queue.Decide(c.ID, d); err != nil {
			refused.Add(1)
			t.Errorf("deciding %s (%s): %v", lc.tag, lc.plan, err)
		}
	})

	// RSS while the load runs, sampled.
	var rssDuring atomic.Int64
	sampleDone := make(chan struct{})
	stopSampling := make(chan struct{})
	go func() {
		defer close(sampleDone)
		tk := time.NewTicker(200 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-tk.C:
				if v := int64(rssKB()); v > rssDuring.Load() {
					rssDuring.Store(v)
				}
			}
		}
	}()

	hc := newClient(t)
	start := time.Now()
	var wg sync.WaitGroup
	for sess := 0; sess < sessions; sess++ {
		wg.Go(func() {
			h := &host{url: in.url(bySession[sess]), token: in.token, hc: hc}
			ctx := context.Background()
			// Ten AI apps with five sessions each: one app's sessions stay
			// under Countersign's cap per AI app.
			if err := h.open(ctx, fmt.Sprintf("reliability-host-%d", sess%10)); err != nil {
				t.Errorf("session %d: %v", sess, err)
				return
			}
			defer h.close()
			work := make(chan *loadCall)
			var ww sync.WaitGroup
			for range inFlight {
				ww.Go(func() {
					for c := range work {
						runCall(t, h, c)
					}
				})
			}
			for i := 0; i < perSession; i++ {
				work <- calls[fmt.Sprintf("s%d-c%d", sess, i)]
			}
			close(work)
			ww.Wait()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stopSampling)
	<-sampleDone
	ap.stop()
	if err := in.stop(t); err != nil {
		t.Errorf("Run: %v", err)
	}
	hc.CloseIdleConnections()
	rssAfter := rssKB()
	for id, p := range stdioLogs {
		readStdioLog(t, p, recorders[id])
	}

	// Figures, for the record (never asserted: the machine is shared).
	var lat []time.Duration
	count := map[plan]int{}
	for _, c := range order {
		count[c.plan]++
		if c.plan == planApprove || c.plan == planEdit || c.plan == planDeny {
			lat = append(lat, c.took)
		}
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(float64(len(lat))*p))]
	}
	t.Logf("%d calls in %d sessions in %s: %.0f calls/s; decided calls p50 %s p99 %s; RSS before %d MB, peak during %d MB, after %d MB",
		len(order), sessions, elapsed.Round(time.Millisecond), float64(len(order))/elapsed.Seconds(),
		pct(0.50).Round(100*time.Microsecond), pct(0.99).Round(100*time.Microsecond), rssBefore/1024, rssDuring.Load()/1024, rssAfter/1024)
	raced := 0
	for _, c := range order {
		if c.raced() {
			raced++
		}
	}
	t.Logf("plans: %v; cancels or disconnects that came as the timeout ended the call: %d; longest wait before the person saw a call: %s",
		count, raced, time.Duration(seenLag.Load()).Round(time.Millisecond))

	checkAnswers(t, order)
	checkAudit(t, in.dataDir, calls)
	checkUpstreams(t, order, recorders)
}

// runCall makes one call as its plan says and keeps what the AI app got.
func runCall(t *testing.T, h *host, c *loadCall) {
	id := callNumber(c.tag)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	var wg sync.WaitGroup
	switch c.plan {
	case planCancel:
		wg.Go(func() {
			select {
			case <-c.seen:
				if err := h.notify(context.Background(), "notifications/cancelled", map[string]any{"requestId": id, "reason": "the person changed their mind"}); err != nil {
					t.Errorf("%s: cancelling: %v", c.tag, err)
				}
				c.acted = time.Now()
			case <-done:
			}
		})
	case planDisconnect:
		wg.Go(func() {
			select {
			case <-c.seen:
				c.acted = time.Now()
				cancel()
			case <-done:
			}
		})
	}
	start := time.Now()
	c.answers, c.err = h.call(ctx, id, "echo", map[string]string{"message": c.tag})
	c.took = time.Since(start)
	close(done)
	wg.Wait()
}

// callNumber makes a JSON-RPC id from a tag, unique within its session.
func callNumber(tag string) int {
	var s, n int
	fmt.Sscanf(tag, "s%d-c%d", &s, &n)
	return n + 1
}

// checkAnswers: every call that waited for its answer got exactly one, and
// the one its plan calls for; an abandoned call got none.
func checkAnswers(t *testing.T, order []*loadCall) {
	t.Helper()
	bad := 0
	fail := func(format string, args ...any) {
		if bad++; bad <= 20 {
			t.Errorf(format, args...)
		}
	}
	for _, c := range order {
		if c.plan == planDisconnect {
			if len(c.answers) != 0 {
				fail("%s (%s): the AI app left, yet got %d answers", c.tag, c.plan, len(c.answers))
			}
			continue
		}
		if c.err != nil {
			fail("%s (%s): the response ended badly: %v", c.tag, c.plan, c.err)
		}
		if len(c.answers) != 1 {
			fail("%s (%s): %d answers, want exactly 1", c.tag, c.plan, len(c.answers))
			continue
		}
		text, isErr := c.answers[0].text()
		var want string
		wantErr := true
		switch c.plan {
		case planApprove:
			want, wantErr = "Echo: "+c.tag, false
		case planEdit:
			want, wantErr = "Echo: "+edited(c.tag), false
		case planDeny:
			want = "Denied in Countersign by the user: not now"
		case planTimeout:
			want = "timed out"
		case planCancel:
			want = "cancelled"
			if c.raced() && strings.Contains(text, "timed out") {
				want = "timed out"
			}
		}
		if isErr != wantErr || !strings.Contains(text, want) {
			fail("%s (%s): answer %q (error %v), want one saying %q (error %v)", c.tag, c.plan, text, isErr, want, wantErr)
		}
	}
	if bad > 20 {
		t.Errorf("… and %d more calls with a wrong answer", bad-20)
	}
}

// checkAudit: for each call exactly one submitted record, one decision
// with the plan's outcome, and for an approved call one forwarded and one
// result record; nothing for a call nobody made.
func checkAudit(t *testing.T, dataDir string, calls map[string]*loadCall) {
	t.Helper()
	recs := auditRecords(t, dataDir)
	byTag := map[string][]*callStory{}
	for id, st := range stories(recs) {
		if len(st.submitted) == 0 {
			t.Errorf("audit: call %s has records but was never submitted", id)
			continue
		}
		tag := argMessage(st.submitted[0].Arguments)
		byTag[tag] = append(byTag[tag], st)
	}
	bad, lateAcks := 0, 0
	fail := func(format string, args ...any) {
		if bad++; bad <= 20 {
			t.Errorf(format, args...)
		}
	}
	for tag, c := range calls {
		sts := byTag[tag]
		if len(sts) != 1 {
			fail("audit: %s (%s) appears under %d call ids, want 1", tag, c.plan, len(sts))
			continue
		}
		st := sts[0]
		if len(st.submitted) != 1 || len(st.decided) != 1 {
			fail("audit: %s (%s): %d submitted and %d decided records, want 1 and 1", tag, c.plan, len(st.submitted), len(st.decided))
			continue
		}
		d := st.decided[0]
		// A disconnect near a session's end may be heard after the session
		// ended (DELETE): then the session's end denied the call.
		endedWithSession := c.plan == planDisconnect && d.Outcome == audit.OutcomeCancelled && strings.Contains(d.Reason, "ended the session")
		if d.Outcome != c.plan.auditOutcome() && !(c.raced() && d.Outcome == audit.OutcomeTimedOut) && !endedWithSession {
			fail("audit: %s (%s): decided %q, want %q", tag, c.plan, d.Outcome, c.plan.auditOutcome())
		}
		if (c.plan == planCancel || c.plan == planDisconnect) && d.Outcome == audit.OutcomeTimedOut {
			lateAcks++
		}
		if c.plan == planEdit && argMessage(d.EditedArguments) != edited(tag) {
			fail("audit: %s: edited arguments recorded as %s", tag, d.EditedArguments)
		}
		wantRan := 0
		if d.Outcome == audit.OutcomeApproved {
			wantRan = 1
		}
		if len(st.forwarded) != wantRan || len(st.results) != wantRan {
			fail("audit: %s (%s): %d forwarded and %d result records, want %d and %d", tag, c.plan, len(st.forwarded), len(st.results), wantRan, wantRan)
		}
		if len(st.denied) != 0 {
			fail("audit: %s (%s): refused by policy: %s", tag, c.plan, st.denied[0].Reason)
		}
	}
	if bad > 20 {
		t.Errorf("… and %d more calls with a wrong audit story", bad-20)
	}
	t.Logf("cancels or disconnects the audit records as timed out: %d", lateAcks)
	if n := len(byTag) - len(calls); n > 0 {
		t.Errorf("audit: %d calls nobody made", n)
	}
}

// checkUpstreams: each server ran exactly the approved calls, once each,
// with the arguments the person approved.
func checkUpstreams(t *testing.T, order []*loadCall, recorders map[string]*recorder) {
	t.Helper()
	want := map[string]map[string]int{}
	for id := range recorders {
		want[id] = map[string]int{}
	}
	for _, c := range order {
		switch c.plan {
		case planApprove:
			want[c.server][c.tag]++
		case planEdit:
			want[c.server][edited(c.tag)]++
		}
	}
	for id, rec := range recorders {
		got := rec.snapshot()
		bad := 0
		for msg, n := range want[id] {
			if got[msg] != n {
				if bad++; bad <= 10 {
					t.Errorf("server %s ran %q %d times, want %d", id, msg, got[msg], n)
				}
			}
		}
		for msg, n := range got {
			if want[id][msg] == 0 {
				if bad++; bad <= 10 {
					t.Errorf("server %s ran %q %d times, but it was never approved", id, msg, n)
				}
			}
		}
		if bad > 10 {
			t.Errorf("server %s: … and %d more", id, bad-10)
		}
		t.Logf("server %s ran %d calls", id, len(got))
	}
}
