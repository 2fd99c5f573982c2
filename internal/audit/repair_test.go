package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// call is the events of one call, for building a log.
func call(id string, kinds ...any) []Event {
	var evs []Event
	for _, k := range kinds {
		ev := Event{Server: "github", Tool: "create_issue", Client: "Claude", CallID: id, Target: "DEFRA/ffc-pay"}
		switch k := k.(type) {
		case Kind:
			ev.Kind = k
		case Outcome:
			ev.Kind, ev.Outcome, ev.Actor = KindCallDecided, k, ActorPerson
		}
		evs = append(evs, ev)
	}
	return evs
}

// copyLive copies the log's file and its write-ahead log as they are on
// disk while the log is open, as a crash would leave them, and returns the
// copy's path.
func copyLive(t *testing.T, path string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "audit.db")
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(path + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// callEnds returns, by call id, the kind and outcome of each call's events.
func callEnds(t *testing.T, l *Log) map[string][]string {
	t.Helper()
	p, err := l.Query(context.Background(), Filter{}, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]string{}
	for i := len(p.Records) - 1; i >= 0; i-- {
		r := p.Records[i]
		if r.CallID != "" {
			m[r.CallID] = append(m[r.CallID], strings.TrimRight(string(r.Kind)+" "+string(r.Outcome), " "))
		}
	}
	return m
}

func TestOpenEndsTheCallsACrashLeftHalfDone(t *testing.T) {
	l, path, _ := openTest(t, Options{})
	mustAppend(t, l, Event{Kind: KindAppStarted, Actor: ActorApp})
	for _, evs := range [][]Event{
		call("1", KindCallSubmitted),                                                          // waiting for the person
		call("2", KindCallSubmitted, OutcomeApproved),                                         // approved, not yet recorded as sent
		call("3", KindCallSubmitted, OutcomeApproved, KindCallForwarded),                      // sent, no answer yet
		call("4", KindCallSubmitted, OutcomeApproved, KindCallForwarded, KindCallResult),      // done
		call("5", KindCallSubmitted, OutcomeDenied),                                           // done
		call("6", KindCallSubmitted, OutcomeAskAgain, OutcomeApproved),                        // approved for the AI app's retry
		call("7", KindCallSubmitted, OutcomeAskAgain),                                         // still waiting
		call("8", KindPolicyDenied),                                                           // done
		call("9", KindCallSubmitted, OutcomeApproved, KindCallForwarded),                      // sent, its answer still queued
		call("10", KindCallSubmitted, OutcomeApproved, KindCallForwarded, KindCallResult)[:3], // the same, written async
	} {
		for i, ev := range evs {
			if i >= 2 && (ev.CallID == "9" || ev.CallID == "10") {
				if err := l.AppendAsync(ev, nil); err != nil {
					t.Fatal(err)
				}
				continue
			}
			mustAppend(t, l, ev)
		}
	}
	// Wait until the writer took the queued events: a sync append after
	// them commits after them.
	mustAppend(t, l, Event{Kind: KindSettingsChanged, Actor: ActorPerson})

	crashed := copyLive(t, path) // the process dies here: no app_stopped, nothing closed
	r, err := Open(crashed, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	want := map[string]string{
		"1":  "call_decided interrupted",
		"2":  "call_result interrupted",
		"3":  "call_result interrupted",
		"7":  "call_decided interrupted",
		"9":  "call_result interrupted",
		"10": "call_result interrupted",
	}
	got := map[string]string{}
	for _, rec := range r.Repaired() {
		got[rec.CallID] = strings.TrimSpace(string(rec.Kind) + " " + string(rec.Outcome))
		if rec.Actor != ActorApp || rec.Server != "github" || rec.Tool != "create_issue" || rec.Client != "Claude" || rec.Reason == "" {
			t.Errorf("repair record %+v", rec)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("repaired %v\nwant     %v", got, want)
	}
	ends := callEnds(t, r)
	if e := ends["3"]; !strings.Contains(r.Repaired()[2].Reason, "may have run") || len(e) != 4 {
		t.Errorf("call 3: %v, %q", e, r.Repaired()[2].Reason)
	}
	if n := r.LastCallID(); n != 10 {
		t.Errorf("LastCallID = %d, want 10", n)
	}
	rep, err := r.Verify(context.Background())
	if err != nil || !rep.OK() {
		t.Fatalf("Verify after repair: %+v, %v", rep, err)
	}

	// Opening again finds nothing more to do.
	r.Close()
	r, err = Open(crashed, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if n := len(r.Repaired()); n != 0 {
		t.Errorf("second Open repaired %d calls again", n)
	}
	if n := r.LastCallID(); n != 10 {
		t.Errorf("LastCallID after the second Open = %d, want 10", n)
	}
}

func TestOpenReadsOnlyWhatTheLastRunWrote(t *testing.T) {
	l, path, _ := openTest(t, Options{})
	for _, ev := range call("41", KindCallSubmitted) {
		mustAppend(t, l, ev)
	}
	l.Close()
	l, err := Open(path, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Repaired()) != 1 {
		t.Fatalf("repaired %+v", l.Repaired())
	}
	// The check remembers how far it read, so the next Open reads only
	// the next run's events.
	db := rawDB(t, path)
	var lastID int64
	if err := db.QueryRow(`SELECT last_id FROM calls_checked`).Scan(&lastID); err != nil {
		t.Fatal(err)
	}
	if lastID != l.Repaired()[0].ID {
		t.Errorf("checked up to %d, want the repair record %d", lastID, l.Repaired()[0].ID)
	}
	for _, ev := range call("42", KindCallSubmitted, OutcomeApproved) {
		mustAppend(t, l, ev)
	}
	l.Close()
	l, err = Open(path, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if rs := l.Repaired(); len(rs) != 1 || rs[0].CallID != "42" || rs[0].Kind != KindCallResult {
		t.Errorf("repaired %+v", rs)
	}
	if n := l.LastCallID(); n != 42 {
		t.Errorf("LastCallID = %d", n)
	}
}

func TestOpenRepairsAFileFromBeforeUniqueCallIDs(t *testing.T) {
	l, path, _ := openTest(t, Options{})
	// Two runs of an older version, whose call ids both start at 1.
	var evs []Event
	evs = append(evs, Event{Kind: KindAppStarted})
	evs = append(evs, call("1", KindCallSubmitted, OutcomeApproved, KindCallForwarded, KindCallResult)...)
	evs = append(evs, call("2", KindCallSubmitted)...)
	evs = append(evs, Event{Kind: KindAppStarted})
	evs = append(evs, call("1", KindCallSubmitted)...)
	evs = append(evs, call("2", KindCallSubmitted, OutcomeTimedOut)...)
	for _, ev := range evs {
		mustAppend(t, l, ev)
	}
	l.Close()
	db := rawDB(t, path)
	mustExec(t, db, `DROP TABLE calls_checked`)
	mustExec(t, db, `PRAGMA user_version = 1`)
	db.Close()

	l, err := Open(path, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var got []string
	for _, r := range l.Repaired() {
		got = append(got, r.CallID+" "+string(r.Kind))
	}
	// The first run's call 2 and the second run's call 1 were left waiting.
	if want := []string{"2 call_decided", "1 call_decided"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("repaired %v, want %v", got, want)
	}
	if n := l.LastCallID(); n != 2 {
		t.Errorf("LastCallID = %d, want 2", n)
	}
	if rep, err := l.Verify(context.Background()); err != nil || !rep.OK() {
		t.Errorf("Verify: %+v, %v", rep, err)
	}
}

func TestQueuedEventsSurviveClose(t *testing.T) {
	l, path, _ := openTest(t, Options{})
	const n = 600 // more than one batch, more than the queue holds
	var written atomic.Int64
	for i := range n {
		ev := Event{Kind: KindCallResult, CallID: fmt.Sprint(i + 1), ResultSize: int64(i)}
		if err := l.AppendAsync(ev, func(r Record, err error) {
			if err == nil && r.ResultSize == int64(r.ID-1) {
				written.Add(1)
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := written.Load(); got != n {
		t.Errorf("%d of %d queued events reported written", got, n)
	}
	if err := l.AppendAsync(Event{Kind: KindAppStopped}, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("AppendAsync after Close: %v", err)
	}
	rep, err := VerifyFile(context.Background(), path)
	if err != nil || !rep.OK() || rep.Events != n {
		t.Errorf("after Close the file holds %+v, %v; want %d events", rep, err, n)
	}
}

func TestAppendAsyncReportsFailures(t *testing.T) {
	l, _, _ := openTest(t, Options{busyTimeout: 50 * time.Millisecond})
	if err := l.AppendAsync(Event{Kind: "no such kind"}, nil); err == nil {
		t.Error("an invalid event was queued")
	}
	var pages int
	if err := l.w.QueryRow(`PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	mustExec(t, l.w, fmt.Sprintf(`PRAGMA max_page_count = %d`, pages))
	failed := make(chan error, 1)
	big := Event{Kind: KindCallForwarded, CallID: "1", Reason: strings.Repeat("x", 64<<10)}
	if err := l.AppendAsync(big, func(_ Record, err error) { failed <- err }); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-failed:
		if err == nil {
			t.Fatal("the write to a full disk was reported written")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the failed write was never reported")
	}
}

func TestLargeArgumentsAreKeptAsAHashAndAPrefix(t *testing.T) {
	l, path, _ := openTest(t, Options{})
	small := json.RawMessage(`{"body":"` + strings.Repeat("é", 100) + `"}`)
	big := json.RawMessage(`{"body": "` + strings.Repeat("é", MaxArgumentBytes) + `"}`)
	compact := []byte(`{"body":"` + strings.Repeat("é", MaxArgumentBytes) + `"}`)
	r1 := mustAppend(t, l, Event{Kind: KindCallSubmitted, CallID: "1", Arguments: small})
	r2 := mustAppend(t, l, Event{Kind: KindCallDecided, CallID: "1", Outcome: OutcomeApproved, Arguments: small, EditedArguments: big})
	if string(r1.Arguments) != string(small) {
		t.Errorf("small arguments changed: %s", r1.Arguments)
	}
	if _, ok := Omitted(r1.Arguments); ok {
		t.Error("small arguments read as omitted")
	}
	p, err := l.Query(context.Background(), Filter{}, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	stored := p.Records[0]
	if stored.ID != r2.ID || len(stored.EditedArguments) > ArgumentPrefixBytes+1024 {
		t.Fatalf("stored %d bytes of edited arguments", len(stored.EditedArguments))
	}
	o, ok := Omitted(stored.EditedArguments)
	if !ok {
		t.Fatalf("large arguments stored as %.200s", stored.EditedArguments)
	}
	sum := sha256.Sum256(compact)
	if o.SHA256 != hex.EncodeToString(sum[:]) || o.Bytes != len(compact) || !strings.HasPrefix(string(compact), o.Prefix) ||
		len(o.Prefix) < ArgumentPrefixBytes-4 || !strings.Contains(o.Note, "too large") {
		t.Errorf("omitted = %d bytes, %s, prefix %d bytes, %q", o.Bytes, o.SHA256, len(o.Prefix), o.Note)
	}
	if rep, err := VerifyFile(context.Background(), path); err != nil || !rep.OK() {
		t.Errorf("Verify: %+v, %v", rep, err)
	}
}

// A call's forwarded and result records wait for the next waited append
// and share its disk sync, instead of a transaction of their own in front
// of it.
func TestQueuedEventsRideWithTheNextWaitedAppend(t *testing.T) {
	l, _, _ := openTest(t, Options{asyncHold: time.Hour})
	written := make(chan Record, 2)
	for _, kind := range []Kind{KindCallForwarded, KindCallResult} {
		if err := l.AppendAsync(Event{Kind: kind, CallID: "1"}, func(r Record, err error) {
			if err != nil {
				t.Errorf("queued %s: %v", r.Kind, err)
			}
			written <- r
		}); err != nil {
			t.Fatal(err)
		}
	}
	// Once the writer holds them, a waited append comes.
	deadline := time.Now().Add(30 * time.Second)
	for len(l.jobs) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the writer never took the queued events")
		}
		time.Sleep(time.Millisecond)
	}
	rec, err := l.Append(context.Background(), Event{Kind: KindCallSubmitted, CallID: "2"})
	if err != nil {
		t.Fatal(err)
	}
	if got := l.commits.Load(); got != 1 {
		t.Errorf("%d transactions for two queued events and a waited one; want 1", got)
	}
	for i := range 2 {
		r := <-written
		if r.ID != int64(i+1) {
			t.Errorf("queued event %d stored as event %d", i+1, r.ID)
		}
	}
	if rec.ID != 3 {
		t.Errorf("the waited event is event %d, want 3: queued events keep their place", rec.ID)
	}
}

// Queued events nobody follows are written on their own after the hold,
// and Close does not wait for the hold.
func TestQueuedEventsAreWrittenWithoutAWaitedAppend(t *testing.T) {
	l, _, _ := openTest(t, Options{asyncHold: 10 * time.Millisecond})
	if err := l.AppendAsync(Event{Kind: KindCallResult, CallID: "1"}, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for l.Head().ID != 1 {
		if time.Now().After(deadline) {
			t.Fatal("a queued event alone was never written")
		}
		time.Sleep(5 * time.Millisecond)
	}

	held, path, _ := openTest(t, Options{asyncHold: time.Hour})
	if err := held.AppendAsync(Event{Kind: KindCallResult, CallID: "1"}, nil); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- held.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Close waited for the hold")
	}
	if rep, err := VerifyFile(context.Background(), path); err != nil || rep.Events != 1 {
		t.Errorf("after Close the file holds %+v, %v; want the queued event", rep, err)
	}
}
