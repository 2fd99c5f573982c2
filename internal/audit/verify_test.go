package audit

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/clocktest"
	"github.com/google/go-cmp/cmp"
)

// fillLog writes 14 events a second apart, a few calls' worth; event 7 is
// a person's denial.
func fillLog(t *testing.T, l *Log, c *clocktest.Clock) {
	t.Helper()
	for i, ev := range callEvents("github", "create_issue", "DEFRA/ffc-pay", "1") {
		if i == 2 {
			break
		}
		mustAppend(t, l, ev)
		c.Advance(time.Second)
	}
	mustAppend(t, l, Event{Kind: KindCallSubmitted, Server: "github", Tool: "delete_repository", CallID: "2", Target: "DEFRA/ffc-pay", Arguments: []byte(`{"repo":"ffc-pay"}`)})
	c.Advance(time.Second)
	mustAppend(t, l, Event{Kind: KindCallDecided, Server: "github", Tool: "delete_repository", CallID: "2", Target: "DEFRA/ffc-pay", Outcome: OutcomeApproved, Actor: ActorPerson})
	c.Advance(time.Second)
	mustAppend(t, l, Event{Kind: KindCallSubmitted, Server: "github", Tool: "delete_repository", CallID: "3", Target: "DEFRA/ffc-pay"})
	c.Advance(time.Second)
	mustAppend(t, l, Event{Kind: KindCallSubmitted, Server: "github", Tool: "merge_pull_request", CallID: "4", Target: "DEFRA/ffc-pay"})
	c.Advance(time.Second)
	mustAppend(t, l, Event{Kind: KindCallDecided, Server: "github", Tool: "delete_repository", CallID: "3", Target: "DEFRA/ffc-pay", Outcome: OutcomeDenied, Actor: ActorPerson, Reason: "not this one"})
	c.Advance(time.Second)
	for i := 0; i < 7; i++ {
		mustAppend(t, l, Event{Kind: KindCallForwarded, Server: "jira", CallID: "5"})
		c.Advance(time.Second)
	}
}

func TestVerifyAcceptsAnIntactLog(t *testing.T) {
	l, path, c := openTest(t, Options{})
	rep, err := l.Verify(context.Background())
	if err != nil || !rep.OK() || rep.Events != 0 || rep.String() != "OK: no events" {
		t.Fatalf("empty log: %v, %v", rep, err)
	}
	fillLog(t, l, c)
	last := mustAppend(t, l, Event{Kind: KindAppStopped})
	for name, verify := range map[string]func() (Report, error){
		"Verify":     func() (Report, error) { return l.Verify(context.Background()) },
		"VerifyFile": func() (Report, error) { return VerifyFile(context.Background(), path) },
	} {
		rep, err := verify()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := Report{Events: 15, FirstID: 1, LastID: 15, Head: last.Hash}
		if diff := cmp.Diff(want, rep); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
}

// TestVerifyFindsTampering edits the file with the sqlite driver, as
// someone with access to it could, and checks that Verify names the first
// event that no longer fits.
func TestVerifyFindsTampering(t *testing.T) {
	tests := []struct {
		name        string
		tamper      func(t *testing.T, db *sql.DB)
		wantID      int64
		wantProblem Problem
		wantDetail  string
	}{
		{
			name: "denial changed to approval",
			tamper: func(t *testing.T, db *sql.DB) {
				mustExec(t, db, `UPDATE events SET outcome = 'approved', reason = '' WHERE id = 7`)
			},
			wantID: 7, wantProblem: ProblemContentChanged, wantDetail: "its content was changed after it was written",
		},
		{
			name: "arguments edited",
			tamper: func(t *testing.T, db *sql.DB) {
				mustExec(t, db, `UPDATE events SET arguments = '{"repo":"other"}' WHERE id = 3`)
			},
			wantID: 3, wantProblem: ProblemContentChanged,
		},
		{
			name: "time edited",
			tamper: func(t *testing.T, db *sql.DB) {
				mustExec(t, db, `UPDATE events SET time_ms = time_ms + 1 WHERE id = 9`)
			},
			wantID: 9, wantProblem: ProblemContentChanged,
		},
		{
			name:   "error flag flipped",
			tamper: func(t *testing.T, db *sql.DB) { mustExec(t, db, `UPDATE events SET is_error = 1 WHERE id = 2`) },
			wantID: 2, wantProblem: ProblemContentChanged,
		},
		{
			name: "middle event deleted",
			tamper: func(t *testing.T, db *sql.DB) {
				mustExec(t, db, `DELETE FROM events WHERE id = 7`)
			},
			wantID: 8, wantProblem: ProblemMissing, wantDetail: "event 7 is missing after event 6",
		},
		{
			name: "several events deleted",
			tamper: func(t *testing.T, db *sql.DB) {
				mustExec(t, db, `DELETE FROM events WHERE id BETWEEN 4 AND 6`)
			},
			wantID: 7, wantProblem: ProblemMissing, wantDetail: "events 4 to 6 are missing after event 3",
		},
		{
			name:   "oldest events deleted without an anchor",
			tamper: func(t *testing.T, db *sql.DB) { mustExec(t, db, `DELETE FROM events WHERE id <= 2`) },
			wantID: 3, wantProblem: ProblemMissing, wantDetail: "events 1 to 2 are missing at the start of the log",
		},
		{
			name: "edited event's hash recomputed",
			tamper: func(t *testing.T, db *sql.DB) {
				mustExec(t, db, `UPDATE events SET outcome = 'approved', reason = '' WHERE id = 7`)
				rehash(t, db, 7)
			},
			wantID: 8, wantProblem: ProblemLinkBroken, wantDetail: "is not the hash",
		},
		{
			name: "deleted event's gap closed by renumbering",
			tamper: func(t *testing.T, db *sql.DB) {
				mustExec(t, db, `DELETE FROM events WHERE id = 7`)
				for id := 8; id <= 15; id++ {
					mustExec(t, db, `UPDATE events SET id = id - 1 WHERE id = ?`, id)
				}
			},
			wantID: 7, wantProblem: ProblemLinkBroken,
		},
		{
			name: "first event's link changed",
			tamper: func(t *testing.T, db *sql.DB) {
				mustExec(t, db, `UPDATE events SET prev_hash = ? WHERE id = 1`, (&Hash{31: 1})[:])
				rehash(t, db, 1)
			},
			wantID: 1, wantProblem: ProblemLinkBroken, wantDetail: "is not the zero hash that starts the log",
		},
		{
			name: "whole chain rewritten with an earlier time",
			tamper: func(t *testing.T, db *sql.DB) {
				mustExec(t, db, `UPDATE events SET time_ms = time_ms - 60000 WHERE id = 7`)
				prev := rehash(t, db, 7)
				for id := int64(8); id <= 15; id++ {
					mustExec(t, db, `UPDATE events SET prev_hash = ? WHERE id = ?`, prev[:], id)
					prev = rehash(t, db, id)
				}
			},
			wantID: 7, wantProblem: ProblemOutOfOrder, wantDetail: "is before the time",
		},
		{
			name: "an event with an unknown row format",
			tamper: func(t *testing.T, db *sql.DB) {
				mustExec(t, db, `UPDATE events SET format = 9 WHERE id = 5`)
			},
			wantID: 5, wantProblem: ProblemUnreadable, wantDetail: "row format 9",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, path, c := openTest(t, Options{})
			fillLog(t, l, c)
			mustAppend(t, l, Event{Kind: KindAppStopped})
			tt.tamper(t, rawDB(t, path))
			for name, verify := range map[string]func() (Report, error){
				"Verify":     func() (Report, error) { return l.Verify(context.Background()) },
				"VerifyFile": func() (Report, error) { return VerifyFile(context.Background(), path) },
			} {
				rep, err := verify()
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if rep.Break == nil {
					t.Fatalf("%s found nothing wrong: %v", name, rep)
				}
				if rep.Break.ID != tt.wantID || rep.Break.Problem != tt.wantProblem || !strings.Contains(rep.Break.Detail, tt.wantDetail) {
					t.Errorf("%s: break %+v; want event %d, %v, detail containing %q", name, *rep.Break, tt.wantID, tt.wantProblem, tt.wantDetail)
				}
				if rep.Events != tt.wantID-1 && tt.wantProblem != ProblemMissing {
					t.Errorf("%s: %d events verified before the break, want %d", name, rep.Events, tt.wantID-1)
				}
				if s := rep.String(); !strings.HasPrefix(s, "BROKEN at event ") {
					t.Errorf("%s: String() = %q", name, s)
				}
			}
		})
	}
}

// TestVerifyCannotSeeAFullRewrite documents the limit of a hash chain: an
// attacker who rewrites every hash after an edit passes Verify, and only a
// head hash recorded elsewhere shows the change.
func TestVerifyCannotSeeAFullRewrite(t *testing.T) {
	l, path, c := openTest(t, Options{})
	fillLog(t, l, c)
	before, err := l.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	mustExec(t, db, `UPDATE events SET outcome = 'approved', reason = '' WHERE id = 7`)
	prev := rehash(t, db, 7)
	for id := int64(8); id <= 14; id++ {
		mustExec(t, db, `UPDATE events SET prev_hash = ? WHERE id = ?`, prev[:], id)
		prev = rehash(t, db, id)
	}
	after, err := l.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !after.OK() {
		t.Fatalf("a full rewrite is expected to verify; got %v", after)
	}
	if after.Head == before.Head {
		t.Error("the head hash did not change; it is the only sign of a full rewrite")
	}
}

func TestAppendOnlyGuards(t *testing.T) {
	l, path, c := openTest(t, Options{})
	fillLog(t, l, c)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`UPDATE events SET outcome = 'approved' WHERE id = 7`,
		`DELETE FROM events WHERE id = 7`,
	} {
		if _, err := db.Exec(q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: error %v, want the append-only guard", q, err)
		}
	}
}

func TestVerifyFileErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.db")
	if _, err := VerifyFile(context.Background(), missing); err == nil {
		t.Error("VerifyFile of a missing file succeeded")
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Error("VerifyFile created the missing file")
	}
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyFile(context.Background(), empty); err == nil || !strings.Contains(err.Error(), ErrNotAuditLog.Error()) {
		t.Errorf("VerifyFile of an empty file: %v", err)
	}
}

func TestVerifyStopsWhenCancelled(t *testing.T) {
	l, _, c := openTest(t, Options{})
	fillLog(t, l, c)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Verify(ctx); err == nil {
		t.Error("Verify with a cancelled context succeeded")
	}
}

func TestReportString(t *testing.T) {
	h := Hash{0xab, 0xcd}
	anchor := &Anchor{ID: 41, Hash: Hash{0x12}, Time: t0}
	tests := []struct {
		name string
		rep  Report
		want string
	}{
		{"empty", Report{}, "OK: no events"},
		{"ok", Report{Events: 3, FirstID: 1, LastID: 3, Head: h},
			"OK: 3 events verified, ids 1 to 3; last hash abcd" + strings.Repeat("0", 60)},
		{"ok after prune", Report{Events: 2, FirstID: 42, LastID: 43, Head: h, Anchor: anchor},
			"OK: 2 events verified, ids 42 to 43; last hash abcd" + strings.Repeat("0", 60) +
				"\nolder events were pruned; the chain starts after event 41 (2026-11-02T09:30:00.000Z, hash 12" + strings.Repeat("0", 62) + ")"},
		{"broken", Report{Events: 6, FirstID: 1, LastID: 6, Head: h, Break: &Break{ID: 7, Problem: ProblemContentChanged, Detail: "its content was changed after it was written"}},
			"BROKEN at event 7 (content changed): its content was changed after it was written\n6 events before it verified, ids 1 to 6"},
		{"broken first", Report{Break: &Break{ID: 1, Problem: ProblemLinkBroken, Detail: "x"}},
			"BROKEN at event 1 (prev_hash mismatch): x"},
		{"broken export line", Report{Break: &Break{Line: 3, Problem: ProblemUnreadable, Detail: "line 3 is not an audit event"}},
			"BROKEN at line 3 (unreadable): line 3 is not an audit event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.rep.String(); got != tt.want {
				t.Errorf("String() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}
