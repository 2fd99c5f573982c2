package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/clocktest"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func day(d int, hms ...int) time.Time {
	t := time.Date(2026, 10, d, 0, 0, 0, 0, time.UTC)
	if len(hms) == 3 {
		t = t.Add(time.Duration(hms[0])*time.Hour + time.Duration(hms[1])*time.Minute + time.Duration(hms[2])*time.Second)
	}
	return t
}

// prunableLog has five events on five days, 29 October to 2 November 2026
// (ids 1 to 5); the first two fall before 31 October.
func prunableLog(t *testing.T) (*Log, string, *clocktest.Clock, []Record) {
	t.Helper()
	l, path, c := openTest(t, Options{RetentionDays: -1})
	var recs []Record
	for _, at := range []time.Time{
		day(29).Add(24*time.Hour - time.Millisecond), // last millisecond of 29 October
		day(30),                  // first millisecond of 30 October
		day(31, 12, 0, 0),        // 31 October
		day(31).AddDate(0, 0, 1), // 1 November
		t0,                       // 2 November, 09:30
	} {
		c.Set(at)
		recs = append(recs, mustAppend(t, l, Event{Kind: KindCallSubmitted, Server: "github", Tool: "t", CallID: at.Format(time.DateOnly)}))
	}
	return l, path, c, recs
}

func TestPruneRemovesWholeDays(t *testing.T) {
	tests := []struct {
		days       int
		wantBefore time.Time
		wantPruned int64
	}{
		{days: 5, wantBefore: day(28)},
		{days: 4, wantBefore: day(29)},
		{days: 3, wantBefore: day(30), wantPruned: 1},
		{days: 2, wantBefore: day(31), wantPruned: 2},
		{days: 1, wantBefore: day(31).AddDate(0, 0, 1), wantPruned: 3},
	}
	for _, tt := range tests {
		t.Run(tt.wantBefore.Format(time.DateOnly), func(t *testing.T) {
			l, _, _, recs := prunableLog(t)
			l.SetRetentionDays(tt.days)
			p, err := l.Prune(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if p.Events != tt.wantPruned || !p.Before.Equal(tt.wantBefore) {
				t.Fatalf("Prune = %d events before %v; want %d before %v", p.Events, p.Before, tt.wantPruned, tt.wantBefore)
			}
			page, err := l.Query(context.Background(), Filter{}, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			var gotIDs []int64
			for _, r := range page.Records {
				gotIDs = append(gotIDs, r.ID)
			}
			wantIDs := []int64{5, 4, 3, 2, 1}[:5-tt.wantPruned]
			if tt.wantPruned > 0 {
				wantIDs = append([]int64{6}, wantIDs...)
			}
			if diff := cmp.Diff(wantIDs, gotIDs); diff != "" {
				t.Errorf("ids left (-want +got):\n%s", diff)
			}
			rep, err := l.Verify(context.Background())
			if err != nil || !rep.OK() {
				t.Fatalf("Verify after prune: %v, %v", rep, err)
			}
			if tt.wantPruned == 0 {
				if p.Record.ID != 0 || rep.Anchor != nil {
					t.Errorf("nothing to prune, yet an event %d / anchor %v was recorded", p.Record.ID, rep.Anchor)
				}
				return
			}
			last := recs[tt.wantPruned-1]
			wantAnchor := Anchor{ID: last.ID, Hash: last.Hash, Time: last.Time}
			if diff := cmp.Diff(&wantAnchor, rep.Anchor); diff != "" {
				t.Errorf("Verify's anchor (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantAnchor, p.Anchor); diff != "" {
				t.Errorf("Prune's anchor (-want +got):\n%s", diff)
			}
			wantReason := "pruned " + []string{"", "1 events", "2 events", "3 events"}[tt.wantPruned] + " up to " + last.Time.Format(timeLayout)
			if p.Record.Kind != KindPruned || p.Record.Actor != ActorApp || p.Record.Reason != wantReason {
				t.Errorf("prune event %+v; want kind %s, actor app, reason %q", p.Record.Event, KindPruned, wantReason)
			}
			var d pruneDetail
			if err := json.Unmarshal(p.Record.Detail, &d); err != nil {
				t.Fatal(err)
			}
			want := pruneDetail{AnchorID: last.ID, AnchorHash: last.Hash.String(), AnchorTime: last.Time.Format(timeLayout),
				Before: tt.wantBefore.Format(timeLayout), Events: tt.wantPruned}
			if diff := cmp.Diff(want, d); diff != "" {
				t.Errorf("prune detail (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPruneEverythingThenContinue(t *testing.T) {
	l, path, c, _ := prunableLog(t)
	l.SetRetentionDays(1)
	c.Set(t0.AddDate(0, 0, 10))
	if p, err := l.Prune(context.Background()); err != nil || p.Events != 5 {
		t.Fatalf("Prune = %+v, %v; want all 5 events", p, err)
	}
	mustAppend(t, l, Event{Kind: KindAppStopped})
	c.Advance(48 * time.Hour)
	// The second prune removes the first prune's event too.
	if p, err := l.Prune(context.Background()); err != nil || p.Events != 2 || p.Anchor.ID != 7 {
		t.Fatalf("second Prune = %+v, %v; want 2 events up to id 7", p, err)
	}
	mustAppend(t, l, Event{Kind: KindAppStarted})
	rep, err := VerifyFile(context.Background(), path)
	if err != nil || !rep.OK() || rep.FirstID != 8 || rep.LastID != 9 || rep.Anchor.ID != 7 {
		t.Fatalf("VerifyFile: %v, %v", rep, err)
	}
}

func TestPruneRunsDaily(t *testing.T) {
	l, _, c := openTest(t, Options{}) // default retention
	mustAppend(t, l, Event{Kind: KindAppStarted})
	c.Advance(DefaultRetentionDays * 24 * time.Hour)
	mustAppend(t, l, Event{Kind: KindAppStopped}) // 180 days later: still kept
	c.Advance(24 * time.Hour)
	rec := mustAppend(t, l, Event{Kind: KindAppStarted}) // the first event is now 181 days old
	page, err := l.Query(context.Background(), Filter{}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []Kind
	for _, r := range page.Records {
		got = append(got, r.Kind)
	}
	want := []Kind{KindAppStarted, KindPruned, KindAppStopped}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("kinds after a day passed (-want +got):\n%s", diff)
	}
	if rec.ID != 4 {
		t.Errorf("the append after the prune got id %d, want 4", rec.ID)
	}
}

func TestPruneAtOpen(t *testing.T) {
	l, path, c := openTest(t, Options{})
	mustAppend(t, l, Event{Kind: KindAppStarted})
	l.Close()
	c.Advance(200 * 24 * time.Hour)
	l, err := Open(path, Options{Now: c.Now, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	mustAppend(t, l, Event{Kind: KindAppStarted}) // queued behind the prune
	page, err := l.Query(context.Background(), Filter{}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []Kind
	for _, r := range page.Records {
		got = append(got, r.Kind)
	}
	if diff := cmp.Diff([]Kind{KindAppStarted, KindPruned}, got); diff != "" {
		t.Errorf("after opening 200 days later (-want +got):\n%s", diff)
	}
}

func TestKeepForever(t *testing.T) {
	l, _, c, _ := prunableLog(t)
	c.Set(t0.AddDate(10, 0, 0))
	if p, err := l.Prune(context.Background()); err != nil || p.Events != 0 {
		t.Fatalf("Prune with RetentionDays < 0 = %+v, %v; want nothing removed", p, err)
	}
}

// TestPruneThenTamper prunes the two oldest events (the anchor is event 2,
// the prune event is 6) and then edits the file.
func TestPruneThenTamper(t *testing.T) {
	tests := []struct {
		name        string
		tamper      func(t *testing.T, db *sql.DB, recs []Record)
		wantID      int64
		wantProblem Problem
		wantDetail  string
	}{
		{
			name: "kept event edited",
			tamper: func(t *testing.T, db *sql.DB, _ []Record) {
				mustExec(t, db, `UPDATE events SET server = 'jira' WHERE id = 4`)
			},
			wantID: 4, wantProblem: ProblemContentChanged,
		},
		{
			name: "anchor hash changed",
			tamper: func(t *testing.T, db *sql.DB, _ []Record) {
				mustExec(t, db, `UPDATE anchor SET last_hash = ?`, (&Hash{1})[:])
			},
			wantID: 3, wantProblem: ProblemLinkBroken, wantDetail: "is not the prune anchor's hash",
		},
		{
			name: "more events deleted and the anchor moved to match",
			tamper: func(t *testing.T, db *sql.DB, recs []Record) {
				mustExec(t, db, `UPDATE anchor SET last_id = 3, last_hash = ?`, recs[2].Hash[:])
				mustExec(t, db, `DELETE FROM events WHERE id = 3`)
			},
			wantID: 6, wantProblem: ProblemAnchor, wantDetail: "the last prune recorded anchor event 2",
		},
		{
			name:   "anchor removed",
			tamper: func(t *testing.T, db *sql.DB, _ []Record) { mustExec(t, db, `DELETE FROM anchor`) },
			wantID: 3, wantProblem: ProblemMissing, wantDetail: "events 1 to 2 are missing at the start of the log",
		},
		{
			name:   "an event after the anchor deleted",
			tamper: func(t *testing.T, db *sql.DB, _ []Record) { mustExec(t, db, `DELETE FROM events WHERE id = 3`) },
			wantID: 4, wantProblem: ProblemMissing, wantDetail: "event 3 is missing after the prune anchor (event 2)",
		},
		{
			name:   "every event deleted",
			tamper: func(t *testing.T, db *sql.DB, _ []Record) { mustExec(t, db, `DELETE FROM events`) },
			wantID: 3, wantProblem: ProblemMissing, wantDetail: "no events follow the prune anchor",
		},
		{
			name: "prune event's detail rewritten and rehashed",
			tamper: func(t *testing.T, db *sql.DB, _ []Record) {
				mustExec(t, db, `UPDATE events SET detail = '{}' WHERE id = 6`)
				rehash(t, db, 6)
			},
			wantID: 6, wantProblem: ProblemAnchor,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, path, _, recs := prunableLog(t)
			l.SetRetentionDays(2)
			if p, err := l.Prune(context.Background()); err != nil || p.Events != 2 {
				t.Fatalf("Prune = %+v, %v", p, err)
			}
			if rep, err := l.Verify(context.Background()); err != nil || !rep.OK() {
				t.Fatalf("Verify before tampering: %v, %v", rep, err)
			}
			tt.tamper(t, rawDB(t, path), recs)
			rep, err := l.Verify(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if rep.Break == nil {
				t.Fatalf("Verify found nothing wrong: %v", rep)
			}
			if rep.Break.ID != tt.wantID || rep.Break.Problem != tt.wantProblem || !strings.Contains(rep.Break.Detail, tt.wantDetail) {
				t.Errorf("break %+v; want event %d, %v, detail containing %q", *rep.Break, tt.wantID, tt.wantProblem, tt.wantDetail)
			}
		})
	}
}

func TestAnchorWithoutPruneEvent(t *testing.T) {
	l, path, _, recs := prunableLog(t)
	db := rawDB(t, path)
	// Someone deletes the two oldest events and writes a matching anchor,
	// but cannot add an audit_pruned event without breaking the chain.
	mustExec(t, db, `INSERT INTO anchor (singleton, last_id, last_hash, last_time_ms) VALUES (1, 2, ?, ?)`, recs[1].Hash[:], recs[1].Time.UnixMilli())
	mustExec(t, db, `DELETE FROM events WHERE id <= 2`)
	rep, err := l.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := &Break{ID: 3, Problem: ProblemAnchor}
	if diff := cmp.Diff(want, rep.Break, cmpopts.IgnoreFields(Break{}, "Detail")); diff != "" {
		t.Errorf("break (-want +got):\n%s", diff)
	}
}

func TestPruneClearsTheSearchIndex(t *testing.T) {
	l, _, _, _ := prunableLog(t)
	l.SetRetentionDays(2)
	if _, err := l.Prune(context.Background()); err != nil {
		t.Fatal(err)
	}
	var left []int64
	rows, err := l.r.Query(`SELECT rowid FROM events_text ORDER BY rowid`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		left = append(left, id)
	}
	if diff := cmp.Diff([]int64{3, 4, 5, 6}, left); diff != "" {
		t.Errorf("search index rows after pruning ids 1 and 2 (-want +got):\n%s", diff)
	}
}
