package gate

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func retryCall(args string) Call {
	return Call{Server: "github", Tool: "create_issue", Client: "Claude Desktop", Arguments: json.RawMessage(args), HostBudget: 55 * time.Second}
}

// stopWaiting submits c and returns once its AI app's budget has passed:
// the verdict must tell the AI app to call again, and the call must still
// wait for the person, marked HostGone.
func stopWaiting(t *testing.T, q *Queue, c Call) Call {
	t.Helper()
	v := q.Submit(context.Background(), c)
	if v.Outcome != OutcomeAskAgain || v.Message() == "" {
		t.Fatalf("after the AI app's budget: %+v, want OutcomeAskAgain", v)
	}
	p := q.Pending()
	if len(p) != 1 || !p[0].HostGone || p[0].ID != v.CallID {
		t.Fatalf("pending after the AI app stopped waiting: %+v", p)
	}
	return p[0]
}

// TestApprovalAfterTheAIAppStoppedWaitingRunsItsRetryOnce: the person
// approves after the AI app gave up; the identical call that follows runs
// without asking, once, naming the call that was approved.
func TestApprovalAfterTheAIAppStoppedWaitingRunsItsRetryOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := New(Options{})
		var heard []Verdict
		var mu sync.Mutex
		c := retryCall(`{"owner":"DEFRA","repo":"ffc-pay","title":"x"}`)
		c.AfterHostGone = func(v Verdict) { mu.Lock(); heard = append(heard, v); mu.Unlock() }
		first := stopWaiting(t, q, c)
		if err := q.Decide(first.ID, Decision{Approve: true}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if len(heard) != 1 || heard[0].Outcome != OutcomeApproved || heard[0].CallID != first.ID {
			t.Fatalf("AfterHostGone heard %+v", heard)
		}
		// The same arguments, members in another order: it runs at once.
		v := q.Submit(context.Background(), retryCall(`{"title":"x", "repo":"ffc-pay","owner":"DEFRA"}`))
		if !v.Approved() || v.Earlier != first.ID || v.CallID == first.ID {
			t.Fatalf("retry: %+v, want approved under call %s", v, first.ID)
		}
		// Once: the next identical call waits for the person.
		go q.Submit(context.Background(), retryCall(`{"owner":"DEFRA","repo":"ffc-pay","title":"x"}`))
		synctest.Wait()
		if p := q.Pending(); len(p) != 1 || p[0].HostGone {
			t.Fatalf("a second retry was not reviewed: %+v", p)
		}
		q.Close()
	})
}

// TestAGrantMatchesOnlyTheSameCall: each way a later call can differ from
// the approved one makes it a new review.
func TestAGrantMatchesOnlyTheSameCall(t *testing.T) {
	tests := []struct {
		name  string
		retry func(c Call) Call
		wait  time.Duration
	}{
		{"another argument value", func(c Call) Call { c.Arguments = json.RawMessage(`{"owner":"DEFRA","repo":"ffc-demo"}`); return c }, 0},
		{"an argument more", func(c Call) Call {
			c.Arguments = json.RawMessage(`{"owner":"DEFRA","repo":"ffc-pay","private":false}`)
			return c
		}, 0},
		{"a number written otherwise", func(c Call) Call {
			c.Arguments = json.RawMessage(`{"owner":"DEFRA","repo":"ffc-pay","n":1e0}`)
			return c
		}, 0},
		{"another tool", func(c Call) Call { c.Tool = "delete_repository"; return c }, 0},
		{"another server", func(c Call) Call { c.Server = "github-2"; return c }, 0},
		{"another AI app", func(c Call) Call { c.Client = "Cursor"; return c }, 0},
		{"other input responses", func(c Call) Call { c.InputResponses = json.RawMessage(`{"k":{}}`); return c }, 0},
		{"after the window", func(c Call) Call { return c }, DefaultGrantWindow + time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := New(Options{})
				defer q.Close()
				c := retryCall(`{"owner":"DEFRA","repo":"ffc-pay","n":1}`)
				first := stopWaiting(t, q, c)
				if err := q.Decide(first.ID, Decision{Approve: true}); err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				time.Sleep(tt.wait)
				go q.Submit(context.Background(), tt.retry(c))
				synctest.Wait()
				if p := q.Pending(); len(p) != 1 {
					t.Fatalf("the differing call was not held for review: pending %+v", p)
				}
			})
		})
	}
}

// TestDenyingOrTimingOutGrantsNothing: only a person's approval lets the
// retry run.
func TestDenyingOrTimingOutGrantsNothing(t *testing.T) {
	for _, end := range []string{"denied", "timed out", "paused"} {
		t.Run(end, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := New(Options{Timeout: 2 * time.Minute})
				defer q.Close()
				c := retryCall(`{"owner":"DEFRA"}`)
				first := stopWaiting(t, q, c)
				switch end {
				case "denied":
					q.Decide(first.ID, Decision{Reason: "no"})
				case "timed out":
					time.Sleep(2 * time.Minute)
				case "paused":
					q.SetPaused(true)
					q.SetPaused(false)
				}
				synctest.Wait()
				if p := q.Pending(); len(p) != 0 {
					t.Fatalf("still pending: %+v", p)
				}
				go q.Submit(context.Background(), c)
				synctest.Wait()
				if p := q.Pending(); len(p) != 1 {
					t.Fatalf("the retry ran without review after the first was %s", end)
				}
			})
		})
	}
}

// TestARetryBeforeTheDecisionWaitsForIt: the AI app calls again while the
// person still reads the first call. The retry waits for that same review
// (no second entry), and gets the person's verdict; a second retry at the
// same moment is a review of its own.
func TestARetryBeforeTheDecisionWaitsForIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := New(Options{})
		defer q.Close()
		c := retryCall(`{"owner":"DEFRA"}`)
		first := stopWaiting(t, q, c)
		verdicts := make(chan Verdict, 2)
		for range 2 {
			go func() { verdicts <- q.Submit(context.Background(), c) }()
		}
		synctest.Wait()
		p := q.Pending()
		if len(p) != 2 || p[0].ID != first.ID || p[0].HostGone || p[1].HostGone {
			t.Fatalf("pending %+v: want the first call, waited for again, and one new review", p)
		}
		if err := q.Decide(first.ID, Decision{Approve: true}); err != nil {
			t.Fatal(err)
		}
		v := <-verdicts
		if !v.Approved() || v.Earlier != first.ID {
			t.Fatalf("the retry that waited got %+v", v)
		}
		select {
		case v := <-verdicts:
			t.Fatalf("the second retry ran without its own review: %+v", v)
		default:
		}
		// Approved while a retry waited: nothing is left over for later.
		q.Decide(p[1].ID, Decision{})
		<-verdicts
		go q.Submit(context.Background(), c)
		synctest.Wait()
		if len(q.Pending()) != 1 {
			t.Fatal("an approval a waiting retry used ran a later call too")
		}
	})
}

// TestTwoRetriesAtOnceUseTheGrantOnce: one runs, the other is reviewed.
func TestTwoRetriesAtOnceUseTheGrantOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := New(Options{})
		defer q.Close()
		c := retryCall(`{"owner":"DEFRA"}`)
		first := stopWaiting(t, q, c)
		q.Decide(first.ID, Decision{Approve: true})
		synctest.Wait()
		verdicts := make(chan Verdict, 2)
		for range 2 {
			go func() { verdicts <- q.Submit(context.Background(), c) }()
		}
		synctest.Wait()
		if v := <-verdicts; !v.Approved() || v.Earlier != first.ID {
			t.Fatalf("first retry: %+v", v)
		}
		if p := q.Pending(); len(p) != 1 {
			t.Fatalf("pending %+v: the other retry must be reviewed", p)
		}
	})
}

// TestNarrowingTheGrantWindowShortensGrantsGiven: policy can narrow it.
func TestNarrowingTheGrantWindowShortensGrantsGiven(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := New(Options{})
		defer q.Close()
		c := retryCall(`{"owner":"DEFRA"}`)
		first := stopWaiting(t, q, c)
		q.Decide(first.ID, Decision{Approve: true})
		synctest.Wait()
		q.SetGrantWindow(time.Minute)
		time.Sleep(61 * time.Second)
		go q.Submit(context.Background(), c)
		synctest.Wait()
		if len(q.Pending()) != 1 {
			t.Fatal("a grant outlived the narrowed window")
		}
	})
}
