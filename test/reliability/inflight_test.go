package reliability

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/audit"
)

// TestStopWithCallsInFlight: the app is stopped while approved calls run
// at a server that has not answered, and started again on the same data.
// Run returns, each AI app gets one answer, every call in the audit ends
// (a result, or a record that Countersign stopped), and no call id names
// two calls.
func TestStopWithCallsInFlight(t *testing.T) {
	enabled(t)
	f := startFaultyApp(t)
	h := f.in.openSession(t, f.hc, "faulty")
	const n = 5
	var wg sync.WaitGroup
	answers := make([][]message, n)
	for i := range n {
		wg.Go(func() {
			answers[i], _ = h.call(context.Background(), i+1, "echo", map[string]string{"message": fmt.Sprintf("fault:hang:%d", i)})
		})
	}
	for range n {
		select {
		case <-f.up.hung:
		case <-time.After(60 * time.Second):
			t.Fatal("the approved calls never reached the server")
		}
	}
	f.ap.stop()
	f.in.stopHolding(t, "calls in flight")
	wg.Wait()
	for i, a := range answers {
		if len(a) != 1 {
			t.Errorf("in flight %d: %d answers, want 1", i, len(a))
		}
	}

	in2 := startApp(t, f.s)
	ap2 := approveAll(in2.core.Queue)
	h2 := in2.openSession(t, f.hc, "faulty")
	for i := range n {
		answerWithin(t, h2, i+1, "echo", map[string]string{"message": fmt.Sprintf("second run %d", i)})
	}
	h2.close()
	ap2.stop()
	in2.stopCleanly(t)
	recs := auditRecords(t, f.s.dataDir)
	byRun := runs(recs)
	if len(byRun) != 2 {
		t.Fatalf("the audit holds %d runs of the app, want 2", len(byRun))
	}
	checkCallIDsUnique(t, recs)
	sts := stories(byRun[0])
	for i := range n {
		msg := fmt.Sprintf("fault:hang:%d", i)
		st := storyOf(t, sts, msg)
		if len(st.forwarded) != 1 || len(st.results) != 1 {
			t.Errorf("%s: %d forwarded and %d closing records, want 1 and 1: the call was left half-done", msg, len(st.forwarded), len(st.results))
		}
	}
}

// TestUpstreamNeverAnswers: a server that takes an approved call and never
// answers. When the AI app closes its request (keeping its session),
// Countersign cancels the call at the server once the stream can no longer
// be resumed, and the audit ends the call's story.
func TestUpstreamNeverAnswers(t *testing.T) {
	enabled(t)
	f := startFaultyApp(t)
	h := f.in.openSession(t, f.hc, "faulty")
	upstreamCtx := leaveHangingCall(t, h, f.up) // the AI app gives up, keeping its session
	// Countersign may wait a while for the AI app to resume the stream
	// (Last-Event-ID) before it cancels: a minute, at most.
	select {
	case <-upstreamCtx.Done():
	case <-time.After(150 * time.Second):
		t.Error("the AI app left, yet two and a half minutes later the call still runs at the server")
	}
	h.close()
	f.ap.stop()
	f.in.stopCleanly(t)
	in2 := startApp(t, f.s) // a start-up repair may end what was left open
	in2.stopCleanly(t)
	st := storyOf(t, stories(auditRecords(t, f.s.dataDir)), "fault:hang")
	if len(st.forwarded) != 1 || len(st.results) != 1 {
		t.Errorf("the call the AI app left: %d forwarded and %d closing records, want 1 and 1: its story never ends", len(st.forwarded), len(st.results))
	}
}

// checkCallIDsUnique: no call id in the audit names two calls, across runs
// of the app.
func checkCallIDsUnique(t *testing.T, recs []audit.Record) {
	t.Helper()
	for id, st := range stories(recs) {
		if len(st.submitted) > 1 {
			t.Errorf("call id %s names %d calls (%s and %s): ids start again when the app does",
				id, len(st.submitted), argMessage(st.submitted[0].Arguments), argMessage(st.submitted[1].Arguments))
		}
	}
}

// checkEveryCallEnds: no call in the audit is left half-done: each call
// submitted was decided once, and each approved call has one closing
// record (its result, or one saying Countersign stopped first).
func checkEveryCallEnds(t *testing.T, recs []audit.Record) {
	t.Helper()
	for id, st := range stories(recs) {
		if len(st.submitted) != 1 {
			continue // refused by policy before anyone was asked, or checked by checkCallIDsUnique
		}
		msg := argMessage(st.submitted[0].Arguments)
		if len(st.decided) != 1 {
			t.Errorf("call %s (%s): %d decisions, want 1: its story never ends", id, msg, len(st.decided))
			continue
		}
		if st.decided[0].Outcome == audit.OutcomeApproved && len(st.results) != 1 {
			t.Errorf("call %s (%s): approved, with %d closing records, want 1: its story never ends", id, msg, len(st.results))
		}
	}
}
