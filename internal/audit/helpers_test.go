package audit

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/clocktest"
)

// t0 is the test clock's start: a Monday morning in UTC.
var t0 = time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// openTest opens a log in a fresh directory with a test clock. It is closed
// when the test ends.
func openTest(t testing.TB, opts Options) (*Log, string, *clocktest.Clock) {
	t.Helper()
	c := clocktest.New(t0)
	if opts.Now == nil {
		opts.Now = c.Now
	}
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l, path, c
}

// mustAppend appends ev or fails the test.
func mustAppend(t testing.TB, l *Log, ev Event) Record {
	t.Helper()
	rec, err := l.Append(context.Background(), ev)
	if err != nil {
		t.Fatalf("Append(%s): %v", ev.Kind, err)
	}
	return rec
}

// rawDB opens the file the way an attacker with the sqlite driver would,
// with the append-only triggers dropped.
func rawDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	for _, q := range []string{`DROP TRIGGER IF EXISTS events_no_update`, `DROP TRIGGER IF EXISTS events_no_delete`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return db
}

// mustExec runs a statement on db or fails the test.
func mustExec(t testing.TB, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// readRow reads one stored row.
func readRow(t testing.TB, db *sql.DB, id int64) row {
	t.Helper()
	r, err := scanRow(db.QueryRow(`SELECT `+rowColumns+` FROM events e WHERE e.id = ?`, id))
	if err != nil {
		t.Fatalf("reading event %d: %v", id, err)
	}
	return r
}

// rehash recomputes row id's hash from its stored prev_hash and content and
// stores it, as an attacker covering an edit would.
func rehash(t testing.TB, db *sql.DB, id int64) Hash {
	t.Helper()
	r := readRow(t, db, id)
	h, _ := r.computeHash(nil)
	mustExec(t, db, `UPDATE events SET hash = ? WHERE id = ?`, h[:], id)
	return h
}

// callEvents is the life of one approved tool call.
func callEvents(server, tool, target, callID string) []Event {
	return []Event{
		{Kind: KindCallSubmitted, Server: server, Tool: tool, Client: "Claude Desktop", CallID: callID, Target: target,
			Arguments: []byte(`{"owner":"DEFRA","repo":"ffc-pay","title":"Fix login"}`)},
		{Kind: KindCallDecided, Server: server, Tool: tool, Client: "Claude Desktop", CallID: callID, Target: target,
			Outcome: OutcomeApproved, Actor: ActorPerson},
		{Kind: KindCallForwarded, Server: server, Tool: tool, Client: "Claude Desktop", CallID: callID, Target: target},
		{Kind: KindCallResult, Server: server, Tool: tool, Client: "Claude Desktop", CallID: callID, Target: target,
			ResultSize: 512, Redactions: map[string]int{"github token": 1}},
	}
}
