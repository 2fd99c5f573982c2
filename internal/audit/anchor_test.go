package audit

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestHeadFollowsCommitsAndSurvivesReopen(t *testing.T) {
	l, path, _ := openTest(t, Options{RetentionDays: -1})
	if h := l.Head(); h != (Head{}) {
		t.Fatalf("empty log: Head = %+v, want zero", h)
	}
	c, stop := l.Watch()
	defer stop()
	var last Record
	for range 3 {
		last = mustAppend(t, l, Event{Kind: KindAppStarted, Actor: ActorApp})
	}
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not signal a commit")
	}
	if got, want := l.Head(), (Head{ID: last.ID, Hash: last.Hash}); got != want {
		t.Fatalf("Head = %+v, want %+v", got, want)
	}
	l.Close()
	l2, err := Open(path, Options{Logger: quiet, RetentionDays: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if got, want := l2.Head(), (Head{ID: last.ID, Hash: last.Hash}); got != want {
		t.Fatalf("after reopen Head = %+v, want %+v", got, want)
	}
}

func TestAfterReadsOldestFirst(t *testing.T) {
	l, _, _ := openTest(t, Options{RetentionDays: -1})
	for range 5 {
		mustAppend(t, l, Event{Kind: KindAppStarted, Actor: ActorApp})
	}
	recs, err := l.After(context.Background(), 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].ID != 3 || recs[1].ID != 4 {
		t.Fatalf("After(2, 2) = %v, want events 3 and 4", ids(recs))
	}
	if recs[0].PrevHash == (Hash{}) || recs[0].Hash == (Hash{}) {
		t.Fatal("After returned records without their hashes")
	}
	recs, err = l.After(context.Background(), 5, 10)
	if err != nil || len(recs) != 0 {
		t.Fatalf("After(5) = %v, %v; want nothing", ids(recs), err)
	}
}

func TestHeadText(t *testing.T) {
	h := Head{ID: 42}
	h.Hash[0] = 0xab
	b, _ := h.MarshalText()
	var back Head
	if err := back.UnmarshalText(b); err != nil || back != h {
		t.Fatalf("round trip %q = %+v, %v", b, back, err)
	}
	for _, bad := range []string{"", "42", "x:" + h.Hash.String(), "-1:" + h.Hash.String(), "42:abc", "042:" + h.Hash.String()} {
		if err := back.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) accepted", bad)
		}
	}
}

// TestVerifyHeadFindsCutOffEvents deletes the newest rows with the sqlite
// driver, as someone hiding their last calls would: the chain left is
// valid, and only the head recorded outside it shows the loss.
func TestVerifyHeadFindsCutOffEvents(t *testing.T) {
	ctx := context.Background()
	l, path, _ := openTest(t, Options{RetentionDays: -1})
	for range 5 {
		mustAppend(t, l, Event{Kind: KindCallDecided, Server: "s", Tool: "t", Outcome: OutcomeApproved, Actor: ActorPerson})
	}
	head := l.Head()
	if rep, err := l.VerifyHead(ctx, head); err != nil || !rep.OK() {
		t.Fatalf("intact log: %v, %v", rep, err)
	}
	l.Close()

	db := rawDB(t, path)
	if _, err := db.Exec(`DELETE FROM events WHERE id > 3`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	rep, err := VerifyFile(ctx, path)
	if err != nil || !rep.OK() {
		t.Fatalf("without the head the shorter chain still verifies (that is the gap): %v, %v", rep, err)
	}
	rep, err = VerifyFileHead(ctx, path, head)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || rep.Break.Problem != ProblemTruncated {
		t.Fatalf("VerifyFileHead = %v, want newest events missing", rep)
	}
	if want := "the log ends at event 3 but event 5 was recorded"; !strings.Contains(rep.String(), want) {
		t.Fatalf("report %q does not say %q", rep.String(), want)
	}

	l2, err := Open(path, Options{Logger: quiet, RetentionDays: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	rep, err = l2.VerifyHead(ctx, head)
	if err != nil || rep.OK() || !strings.Contains(rep.String(), "the log ends at event 3 but event 5 was recorded") {
		t.Fatalf("Log.VerifyHead = %v, %v", rep, err)
	}
}

func TestVerifyHeadFindsAReplacedTail(t *testing.T) {
	ctx := context.Background()
	l, path, _ := openTest(t, Options{RetentionDays: -1})
	for range 3 {
		mustAppend(t, l, Event{Kind: KindAppStarted, Actor: ActorApp})
	}
	head := l.Head()
	l.Close()
	// Cut the tail and write other events in its place through the real
	// writer: every hash is valid, only the recorded head disagrees.
	db := rawDB(t, path)
	if _, err := db.Exec(`DELETE FROM events WHERE id > 1`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	l2, err := Open(path, Options{Logger: quiet, RetentionDays: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	for range 3 {
		mustAppend(t, l2, Event{Kind: KindAppStopped, Actor: ActorApp})
	}
	rep, err := l2.VerifyHead(ctx, head)
	if err != nil || rep.OK() || rep.Break.ID != 3 || rep.Break.Problem != ProblemTruncated {
		t.Fatalf("VerifyHead = %v, %v; want a break at event 3", rep, err)
	}
}

func TestVerifyHeadAcceptsOlderHeadsAndNone(t *testing.T) {
	ctx := context.Background()
	l, _, _ := openTest(t, Options{RetentionDays: -1})
	mustAppend(t, l, Event{Kind: KindAppStarted, Actor: ActorApp})
	older := l.Head()
	mustAppend(t, l, Event{Kind: KindAppStopped, Actor: ActorApp})
	for _, h := range []Head{{}, older, l.Head()} {
		if rep, err := l.VerifyHead(ctx, h); err != nil || !rep.OK() {
			t.Errorf("VerifyHead(%d) = %v, %v; want OK", h.ID, rep, err)
		}
	}
}
