package gate

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// waitPending returns the first pending call once one is waiting.
func waitPending(t *testing.T, q *Queue) Call {
	t.Helper()
	for range 1000 {
		if p := q.Pending(); len(p) > 0 {
			return p[0]
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("no call became pending")
	return Call{}
}

func TestVerdicts(t *testing.T) {
	tests := []struct {
		name        string
		act         func(q *Queue, id string, cancel context.CancelCauseFunc)
		wantOutcome Outcome
		wantMessage string
	}{
		{
			name:        "approved",
			act:         func(q *Queue, id string, _ context.CancelCauseFunc) { q.Decide(id, Decision{Approve: true}) },
			wantOutcome: OutcomeApproved,
		},
		{
			name:        "denied with reason",
			act:         func(q *Queue, id string, _ context.CancelCauseFunc) { q.Decide(id, Decision{Reason: "wrong repo"}) },
			wantOutcome: OutcomeDenied,
			wantMessage: "Denied in Countersign by the user: wrong repo",
		},
		{
			name:        "denied without reason",
			act:         func(q *Queue, id string, _ context.CancelCauseFunc) { q.Decide(id, Decision{}) },
			wantOutcome: OutcomeDenied,
			wantMessage: "Denied in Countersign by the user.",
		},
		{
			name:        "host cancelled",
			act:         func(_ *Queue, _ string, cancel context.CancelCauseFunc) { cancel(ErrHostCancelled) },
			wantOutcome: OutcomeCancelled,
			wantMessage: "Not run: the AI app cancelled the request.",
		},
		{
			name:        "host disconnected",
			act:         func(_ *Queue, _ string, cancel context.CancelCauseFunc) { cancel(ErrHostDisconnected) },
			wantOutcome: OutcomeDisconnected,
		},
		{
			name:        "plain cancel counts as disconnect",
			act:         func(_ *Queue, _ string, cancel context.CancelCauseFunc) { cancel(nil) },
			wantOutcome: OutcomeDisconnected,
		},
		{
			name:        "upstream lost",
			act:         func(_ *Queue, _ string, cancel context.CancelCauseFunc) { cancel(ErrUpstreamLost) },
			wantOutcome: OutcomeUpstreamLost,
			wantMessage: "Not run: the connection to the server was lost.",
		},
		{
			name:        "shutdown",
			act:         func(q *Queue, _ string, _ context.CancelCauseFunc) { q.Close() },
			wantOutcome: OutcomeShutdown,
		},
		{
			name:        "paused",
			act:         func(q *Queue, _ string, _ context.CancelCauseFunc) { q.SetPaused(true) },
			wantOutcome: OutcomePaused,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := New(Options{})
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			got := make(chan Verdict, 1)
			go func() { got <- q.Submit(ctx, Call{Server: "github", Tool: "create_issue"}) }()
			c := waitPending(t, q)
			tt.act(q, c.ID, cancel)
			v := <-got
			if v.Outcome != tt.wantOutcome {
				t.Fatalf("outcome = %v, want %v", v.Outcome, tt.wantOutcome)
			}
			if v.Approved() != (tt.wantOutcome == OutcomeApproved) {
				t.Errorf("Approved() = %v", v.Approved())
			}
			if tt.wantMessage != "" && v.Message() != tt.wantMessage {
				t.Errorf("message = %q, want %q", v.Message(), tt.wantMessage)
			}
			if len(q.Pending()) != 0 {
				t.Errorf("call still pending after verdict")
			}
		})
	}
}

func TestTimeoutDeniesAtDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := New(Options{Timeout: 2 * time.Minute})
		start := time.Now()
		got := make(chan Verdict, 1)
		go func() { got <- q.Submit(context.Background(), Call{Tool: "echo"}) }()
		synctest.Wait()
		p := q.Pending()
		if len(p) != 1 || !p[0].Deadline.Equal(start.Add(2*time.Minute)) {
			t.Fatalf("pending = %+v, want one call with deadline start+2m", p)
		}
		time.Sleep(2*time.Minute - time.Nanosecond)
		synctest.Wait()
		select {
		case v := <-got:
			t.Fatalf("verdict before deadline: %+v", v)
		default:
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		v := <-got
		if v.Outcome != OutcomeTimedOut {
			t.Fatalf("outcome = %v, want timed out", v.Outcome)
		}
		if want := "Not run: nobody approved this call in Countersign before it timed out (after 2m0s)."; v.Message() != want {
			t.Errorf("message = %q, want %q", v.Message(), want)
		}
		if err := q.Decide(v.CallID, Decision{Approve: true}); !errors.Is(err, ErrNotPending) {
			t.Errorf("late approval: err = %v, want ErrNotPending", err)
		}
	})
}

func TestDefaultTimeoutIsFiveMinutes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := New(Options{})
		start := time.Now()
		v := q.Submit(context.Background(), Call{Tool: "echo"})
		if v.Outcome != OutcomeTimedOut || time.Since(start) != 5*time.Minute {
			t.Fatalf("outcome %v after %v, want timed out after 5m", v.Outcome, time.Since(start))
		}
	})
}

func TestSetTimeoutAppliesToNewCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := New(Options{Timeout: time.Hour})
		q.SetTimeout(time.Second)
		start := time.Now()
		q.Submit(context.Background(), Call{})
		if got := time.Since(start); got != time.Second {
			t.Fatalf("waited %v, want 1s", got)
		}
	})
}

func TestEditedArgumentsTravelWithApproval(t *testing.T) {
	q := New(Options{})
	got := make(chan Verdict, 1)
	go func() {
		got <- q.Submit(context.Background(), Call{Arguments: json.RawMessage(`{"title":"x"}`),
			Check: func(json.RawMessage) error { return nil }})
	}()
	c := waitPending(t, q)
	if err := q.Decide(c.ID, Decision{Approve: true, Arguments: json.RawMessage(`{`)}); !errors.Is(err, ErrEditRefused) {
		t.Fatalf("invalid edited JSON: err = %v, want a refusal", err)
	}
	if err := q.Decide(c.ID, Decision{Approve: true, Arguments: json.RawMessage(`{"title":"y"}`)}); err != nil {
		t.Fatal(err)
	}
	if v := <-got; string(v.Arguments) != `{"title":"y"}` {
		t.Fatalf("arguments = %s", v.Arguments)
	}
}

func TestEditedArgumentsTheRulesRefuseKeepTheCallWaiting(t *testing.T) {
	q := New(Options{})
	got := make(chan Verdict, 1)
	var checked []string
	go func() {
		got <- q.Submit(context.Background(), Call{Arguments: json.RawMessage(`{"repo":"ffc-pay"}`),
			Check: func(args json.RawMessage) error {
				checked = append(checked, string(args))
				if strings.Contains(string(args), "secret") {
					return errors.New("DEFRA/secret is not in GitHub's allowlist.")
				}
				return nil
			}})
	}()
	c := waitPending(t, q)
	err := q.Decide(c.ID, Decision{Approve: true, Arguments: json.RawMessage(`{"repo":"secret"}`)})
	var refused *EditRefusedError
	if !errors.As(err, &refused) || refused.Reason != "DEFRA/secret is not in GitHub's allowlist." {
		t.Fatalf("err = %v, want the rules' refusal", err)
	}
	if p := q.Pending(); len(p) != 1 || p[0].ID != c.ID {
		t.Fatalf("pending = %+v, want the call still waiting", p)
	}
	select {
	case v := <-got:
		t.Fatalf("the call ended: %+v", v)
	default:
	}
	if err := q.Decide(c.ID, Decision{Approve: true, Arguments: json.RawMessage(`{"repo":"ffc-api"}`)}); err != nil {
		t.Fatal(err)
	}
	if v := <-got; !v.Approved() || string(v.Arguments) != `{"repo":"ffc-api"}` {
		t.Fatalf("verdict %+v", v)
	}
	if want := []string{`{"repo":"secret"}`, `{"repo":"ffc-api"}`}; strings.Join(checked, " ") != strings.Join(want, " ") {
		t.Fatalf("checked %q, want %q", checked, want)
	}
}

func TestEditedArgumentsWithoutACheckAreRefused(t *testing.T) {
	q := New(Options{})
	got := make(chan Verdict, 1)
	go func() { got <- q.Submit(context.Background(), Call{Arguments: json.RawMessage(`{}`)}) }()
	c := waitPending(t, q)
	if err := q.Decide(c.ID, Decision{Approve: true, Arguments: json.RawMessage(`{"a":1}`)}); !errors.Is(err, ErrEditRefused) {
		t.Fatalf("err = %v, want a refusal", err)
	}
	if err := q.Decide(c.ID, Decision{Approve: true}); err != nil {
		t.Fatal(err)
	}
	if v := <-got; !v.Approved() || v.Arguments != nil {
		t.Fatalf("verdict %+v", v)
	}
}

func TestClosedAndPausedQueuesDenyAtOnce(t *testing.T) {
	q := New(Options{})
	q.SetPaused(true)
	if v := q.Submit(context.Background(), Call{}); v.Outcome != OutcomePaused {
		t.Fatalf("paused: outcome %v", v.Outcome)
	}
	q.SetPaused(false)
	q.Close()
	q.Close()
	if v := q.Submit(context.Background(), Call{}); v.Outcome != OutcomeShutdown {
		t.Fatalf("closed: outcome %v", v.Outcome)
	}
}

// TestExactlyOneVerdictUnderRaces races approvals, denials, cancellation,
// the timeout and shutdown against each other; each call must end once, and
// the verdict Submit returns must be the one subscribers saw.
func TestExactlyOneVerdictUnderRaces(t *testing.T) {
	const calls = 200
	q := New(Options{Timeout: 50 * time.Millisecond})
	sub := q.Subscribe()
	ended := make(map[string]Verdict)
	added := make(map[string]bool)
	var mu sync.Mutex
	subDone := make(chan struct{})
	go func() {
		defer close(subDone)
		for ev := range sub.Events() {
			if ev.Kind == EventAdded {
				mu.Lock()
				added[ev.Call.ID] = true
				mu.Unlock()
			}
			if ev.Kind != EventEnded {
				continue
			}
			mu.Lock()
			if _, dup := ended[ev.Call.ID]; dup {
				t.Errorf("call %s ended twice", ev.Call.ID)
			}
			ended[ev.Call.ID] = ev.Verdict
			mu.Unlock()
		}
	}()

	var wg sync.WaitGroup
	verdicts := make(chan Verdict, calls)
	for i := range calls {
		ctx, cancel := context.WithCancelCause(context.Background())
		wg.Go(func() { verdicts <- q.Submit(ctx, Call{Tool: "t"}) })
		wg.Go(func() {
			for _, c := range q.Pending() {
				q.Decide(c.ID, Decision{Approve: i%2 == 0})
			}
		})
		wg.Go(func() { cancel(ErrHostCancelled) })
		if i == calls-10 {
			wg.Go(q.Close)
		}
	}
	wg.Wait()
	close(verdicts)
	<-subDone // the queue is closed, so the subscription ends after its backlog
	got := 0
	for v := range verdicts {
		got++
		seen, ok := ended[v.CallID]
		if (v.Outcome == OutcomeShutdown || v.Outcome == OutcomeCancelled) && v.CallID != "" && !ok && !added[v.CallID] {
			continue // submitted after Close, or cancelled before it was held: never pending, so no event
		}
		if !ok {
			t.Errorf("call %s: subscriber never saw its end", v.CallID)
		} else if seen.Outcome != v.Outcome {
			t.Errorf("call %s: Submit got %v, subscriber saw %v", v.CallID, v.Outcome, seen.Outcome)
		}
	}
	if got != calls {
		t.Fatalf("%d verdicts, want %d", got, calls)
	}
}

func TestSubscriberSeesAddedThenEnded(t *testing.T) {
	q := New(Options{})
	sub := q.Subscribe()
	defer sub.Close()
	go q.Submit(context.Background(), Call{Server: "github", Tool: "create_issue", Client: "Claude"})
	ev := <-sub.Events()
	if ev.Kind != EventAdded || ev.Call.Tool != "create_issue" || ev.Call.Client != "Claude" {
		t.Fatalf("first event = %+v", ev)
	}
	q.Decide(ev.Call.ID, Decision{Reason: "no"})
	ev = <-sub.Events()
	if ev.Kind != EventEnded || ev.Verdict.Outcome != OutcomeDenied || ev.Verdict.Reason != "no" {
		t.Fatalf("second event = %+v", ev)
	}
}

func TestReservedIDs(t *testing.T) {
	q := New(Options{Timeout: time.Minute})
	defer q.Close()
	id := q.NewID()
	sub := q.Subscribe()
	defer sub.Close()
	got := make(chan Verdict, 2)
	go func() { got <- q.Submit(context.Background(), Call{ID: id, Tool: "a"}) }()
	ev := <-sub.Events()
	if ev.Call.ID != id {
		t.Fatalf("reserved id %s not used: %s", id, ev.Call.ID)
	}
	// A second call naming the same id, or one never reserved, gets a new one.
	for _, bad := range []string{id, "999", "x", ""} {
		go func() { got <- q.Submit(context.Background(), Call{ID: bad, Tool: "b"}) }()
		ev := <-sub.Events()
		for ev.Kind != EventAdded {
			ev = <-sub.Events()
		}
		if ev.Call.ID == bad {
			t.Errorf("id %q was accepted", bad)
		}
		q.Decide(ev.Call.ID, Decision{})
		<-got
	}
	q.Decide(id, Decision{Approve: true})
	if v := <-got; v.CallID != id || !v.Approved() {
		t.Errorf("verdict %+v", v)
	}
}

func TestIDsContinueAfterLastID(t *testing.T) {
	q := New(Options{Timeout: time.Minute, LastID: 41})
	defer q.Close()
	if id := q.NewID(); id != "42" {
		t.Errorf("first id %s, want 42", id)
	}
	sub := q.Subscribe()
	defer sub.Close()
	// An id at or below LastID was never reserved by this queue.
	go q.Submit(context.Background(), Call{ID: "7", Tool: "a"})
	ev := <-sub.Events()
	if ev.Call.ID != "43" {
		t.Errorf("call id %s, want 43", ev.Call.ID)
	}
	q.Decide(ev.Call.ID, Decision{})
}
