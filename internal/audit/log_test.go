package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/clocktest"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestAppendStoresWhatWasGiven(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		want Event // as stored
	}{
		{
			name: "submitted call keeps redacted arguments",
			ev: Event{Kind: KindCallSubmitted, Server: "github", Tool: "create_issue", Client: "Claude Desktop",
				CallID: "7", Target: "DEFRA/ffc-pay", Arguments: []byte(`{"owner": "DEFRA", "token": "[redacted: github token]"}`)},
			want: Event{Kind: KindCallSubmitted, Server: "github", Tool: "create_issue", Client: "Claude Desktop",
				CallID: "7", Target: "DEFRA/ffc-pay", Arguments: []byte(`{"owner":"DEFRA","token":"[redacted: github token]"}`)},
		},
		{
			name: "approval after editing keeps both argument sets",
			ev: Event{Kind: KindCallDecided, Server: "github", Tool: "create_issue", CallID: "7",
				Outcome: OutcomeApproved, Actor: ActorPerson, Arguments: []byte(`{"title":"a"}`), EditedArguments: []byte(`{"title":"b"}`)},
			want: Event{Kind: KindCallDecided, Server: "github", Tool: "create_issue", CallID: "7",
				Outcome: OutcomeApproved, Actor: ActorPerson, Arguments: []byte(`{"title":"a"}`), EditedArguments: []byte(`{"title":"b"}`)},
		},
		{
			name: "timeout names who decided and why",
			ev:   Event{Kind: KindCallDecided, CallID: "8", Outcome: OutcomeTimedOut, Actor: ActorTimeout, Reason: "5m0s"},
			want: Event{Kind: KindCallDecided, CallID: "8", Outcome: OutcomeTimedOut, Actor: ActorTimeout, Reason: "5m0s"},
		},
		{
			name: "result keeps size, error flag and redaction counts",
			ev:   Event{Kind: KindCallResult, CallID: "7", ResultSize: 2048, IsError: true, Redactions: map[string]int{"jwt": 2, "aws key": 1}},
			want: Event{Kind: KindCallResult, CallID: "7", ResultSize: 2048, IsError: true, Redactions: map[string]int{"jwt": 2, "aws key": 1}},
		},
		{
			name: "policy denial keeps its reason",
			ev:   Event{Kind: KindPolicyDenied, Server: "jira", Tool: "create_issue", Target: "SECRET", Outcome: OutcomeDenied, Actor: ActorPolicy, Reason: "project SECRET is not in the allowlist"},
			want: Event{Kind: KindPolicyDenied, Server: "jira", Tool: "create_issue", Target: "SECRET", Outcome: OutcomeDenied, Actor: ActorPolicy, Reason: "project SECRET is not in the allowlist"},
		},
		{
			name: "settings change keeps its detail",
			ev:   Event{Kind: KindSettingsChanged, Actor: ActorPerson, Detail: []byte(` { "timeout" : "10m" } `)},
			want: Event{Kind: KindSettingsChanged, Actor: ActorPerson, Detail: []byte(`{"timeout":"10m"}`)},
		},
		{
			name: "JSON null is stored as absent",
			ev:   Event{Kind: KindSignIn, Server: "github", Arguments: []byte(`null`), Detail: []byte(" \n")},
			want: Event{Kind: KindSignIn, Server: "github"},
		},
		{
			name: "invalid UTF-8 and NUL become replacement characters",
			ev:   Event{Kind: KindSignInFailed, Server: "git\xffhub", Reason: "bad\x00state", Detail: []byte("{\"e\":\"x\xfey\"}")},
			want: Event{Kind: KindSignInFailed, Server: "git\uFFFDhub", Reason: "bad\uFFFDstate", Detail: []byte("{\"e\":\"x\uFFFDy\"}")},
		},
		{
			name: "empty redaction map is absent",
			ev:   Event{Kind: KindAppStarted, Redactions: map[string]int{}},
			want: Event{Kind: KindAppStarted},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _, _ := openTest(t, Options{})
			got := mustAppend(t, l, tt.ev)
			if diff := cmp.Diff(tt.want, got.Event, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Append returned (-want +got):\n%s", diff)
			}
			page, err := l.Query(context.Background(), Filter{}, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Records) != 1 {
				t.Fatalf("Query returned %d records, want 1", len(page.Records))
			}
			if diff := cmp.Diff(got, page.Records[0], cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("stored record differs from Append's (-append +stored):\n%s", diff)
			}
			if want := t0; !got.Time.Equal(want) || got.Time.Location() != time.UTC {
				t.Errorf("Time = %v, want %v in UTC", got.Time, want)
			}
		})
	}
}

func TestAppendRefusesBadEvents(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
	}{
		{"unknown kind", Event{Kind: "call_teleported"}},
		{"empty kind", Event{}},
		{"prune events come only from the log", Event{Kind: KindPruned, Reason: "pruned 1 events"}},
		{"arguments that are not JSON", Event{Kind: KindCallSubmitted, Arguments: []byte(`ghp_abcdefghijklmnopqrstuvwxyz0123456789`)}},
		{"truncated arguments", Event{Kind: KindCallSubmitted, Arguments: []byte(`{"a":`)}},
		{"edited arguments that are not JSON", Event{Kind: KindCallDecided, EditedArguments: []byte(`{'a':1}`)}},
		{"detail that is not JSON", Event{Kind: KindSettingsChanged, Detail: []byte(`timeout=10m`)}},
		{"negative result size", Event{Kind: KindCallResult, ResultSize: -1}},
		{"negative redaction count", Event{Kind: KindCallResult, Redactions: map[string]int{"jwt": -1}}},
		{"redaction count without a name", Event{Kind: KindCallResult, Redactions: map[string]int{"": 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _, _ := openTest(t, Options{})
			_, err := l.Append(context.Background(), tt.ev)
			if !errors.Is(err, errInvalid) {
				t.Fatalf("Append error = %v, want an invalid-event error", err)
			}
			page, err := l.Query(context.Background(), Filter{}, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Records) != 0 {
				t.Errorf("a refused event was stored: %+v", page.Records)
			}
		})
	}
}

func TestAppendLinksTheChain(t *testing.T) {
	l, _, _ := openTest(t, Options{})
	var prev Hash
	for i, ev := range callEvents("github", "create_issue", "DEFRA/ffc-pay", "1") {
		rec := mustAppend(t, l, ev)
		if rec.ID != int64(i+1) {
			t.Errorf("event %d got id %d", i+1, rec.ID)
		}
		if rec.PrevHash != prev {
			t.Errorf("event %d prev_hash %s, want %s", rec.ID, rec.PrevHash, prev)
		}
		r := newRow(rec.ID, rec.Time.UnixMilli(), &rec.Event)
		r.prevHash = prev
		if h, _ := r.computeHash(nil); h != rec.Hash {
			t.Errorf("event %d hash %s, want SHA-256(prev_hash || canonical) = %s", rec.ID, rec.Hash, h)
		}
		prev = rec.Hash
	}
}

func TestTimeNeverGoesBackwards(t *testing.T) {
	l, _, c := openTest(t, Options{})
	first := mustAppend(t, l, Event{Kind: KindAppStarted})
	c.Advance(-time.Hour) // the clock is set back
	second := mustAppend(t, l, Event{Kind: KindAppStopped})
	if !second.Time.Equal(first.Time) {
		t.Errorf("after the clock went back, time = %v, want the previous event's %v", second.Time, first.Time)
	}
	c.Advance(2*time.Hour + 1500*time.Microsecond)
	third := mustAppend(t, l, Event{Kind: KindAppStarted})
	if want := t0.Add(time.Hour + time.Millisecond); !third.Time.Equal(want) {
		t.Errorf("time = %v, want %v (milliseconds, truncated)", third.Time, want)
	}
}

func TestOpenCreatesPrivateFiles(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Unix modes")
	}
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "audit.db")
	l, err := Open(path, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	mustAppend(t, l, Event{Kind: KindAppStarted})
	for p, want := range map[string]os.FileMode{
		filepath.Dir(dir): 0o700, dir: 0o700, path: 0o600, path + "-wal": 0o600, path + "-shm": 0o600,
	} {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s has mode %o, want %o", p, got, want)
		}
	}
}

func TestOpenNarrowsAWideMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Unix modes")
	}
	path := filepath.Join(t.TempDir(), "audit.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := Open(path, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != 0o600 {
		t.Errorf("mode %o, want 600", got)
	}
}

func TestOpenRefusesOtherFiles(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		want    error
	}{
		{
			name: "another application's database",
			prepare: func(t *testing.T, path string) {
				db, err := sql.Open("sqlite", path)
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				mustExec(t, db, `CREATE TABLE notes (body TEXT)`)
			},
			want: ErrNotAuditLog,
		},
		{
			name: "an audit log from a newer version",
			prepare: func(t *testing.T, path string) {
				l, err := Open(path, Options{Logger: quiet})
				if err != nil {
					t.Fatal(err)
				}
				l.Close()
				db, err := sql.Open("sqlite", path)
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				mustExec(t, db, fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion+1))
			},
			want: ErrNewerSchema,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.db")
			tt.prepare(t, path)
			l, err := Open(path, Options{Logger: quiet})
			if err == nil {
				l.Close()
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open error = %v, want %v", err, tt.want)
			}
			if _, err := VerifyFile(context.Background(), path); !errors.Is(err, tt.want) {
				t.Errorf("VerifyFile error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestOpenRefusesAQuestionMarkInThePath(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "audit?.db"), Options{Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "'?'") {
		t.Fatalf("Open error = %v, want one about '?'", err)
	}
}

func TestReopenContinuesTheChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	c := clocktest.New(t0)
	for i := range 3 {
		l, err := Open(path, Options{Now: c.Now, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		mustAppend(t, l, Event{Kind: KindAppStarted})
		mustAppend(t, l, Event{Kind: KindAppStopped})
		if err := l.Close(); err != nil {
			t.Fatalf("Close %d: %v", i, err)
		}
		c.Advance(time.Minute)
	}
	rep, err := VerifyFile(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Events != 6 || rep.FirstID != 1 || rep.LastID != 6 {
		t.Errorf("after three sessions: %v", rep)
	}
}

// TestAppendFailsClosed covers the ways a write can fail. In each, Append
// must return an error (the caller then denies the call), nothing partial
// may be stored, and once the cause is gone the chain must still verify.
func TestAppendFailsClosed(t *testing.T) {
	ev := Event{Kind: KindCallSubmitted, Server: "github", Tool: "create_issue",
		Arguments: []byte(`{"body":"` + strings.Repeat("x", 64<<10) + `"}`)}
	tests := []struct {
		name   string
		induce func(t *testing.T, l *Log, path string) (repair func())
		want   error // nil: any error
	}{
		{
			name: "closed log",
			induce: func(t *testing.T, l *Log, path string) func() {
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				return nil
			},
			want: ErrClosed,
		},
		{
			name: "disk full",
			induce: func(t *testing.T, l *Log, path string) func() {
				var pages int
				if err := l.w.QueryRow(`PRAGMA page_count`).Scan(&pages); err != nil {
					t.Fatal(err)
				}
				// The writer has one connection, so this limits its writes.
				mustExec(t, l.w, fmt.Sprintf(`PRAGMA max_page_count = %d`, pages))
				return func() { mustExec(t, l.w, `PRAGMA max_page_count = 1073741823`) }
			},
		},
		{
			name: "locked by another process",
			induce: func(t *testing.T, l *Log, path string) func() {
				other, err := sql.Open("sqlite", path)
				if err != nil {
					t.Fatal(err)
				}
				conn, err := other.Conn(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if _, err := conn.ExecContext(context.Background(), `BEGIN IMMEDIATE`); err != nil {
					t.Fatal(err)
				}
				return func() {
					conn.ExecContext(context.Background(), `ROLLBACK`)
					conn.Close()
					other.Close()
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, path, _ := openTest(t, Options{busyTimeout: 50 * time.Millisecond})
			before := mustAppend(t, l, Event{Kind: KindAppStarted})
			repair := tt.induce(t, l, path)
			_, err := l.Append(context.Background(), ev)
			if err == nil {
				t.Fatal("Append succeeded; want an error so the call is denied")
			}
			t.Logf("Append error: %v", err)
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Append error = %v, want %v", err, tt.want)
			}
			if repair == nil {
				return
			}
			repair()
			after := mustAppend(t, l, Event{Kind: KindAppStopped})
			if after.ID != before.ID+1 {
				t.Errorf("after the failure the next event got id %d, want %d: the failed one left a trace", after.ID, before.ID+1)
			}
			rep, err := l.Verify(context.Background())
			if err != nil || !rep.OK() {
				t.Errorf("Verify after recovery: %v, %v", rep, err)
			}
		})
	}
}

func TestReadOnlyFileFailsClosed(t *testing.T) {
	if os.Geteuid() == 0 || runtime.GOOS == "windows" {
		t.Skip("root ignores file modes; TestAppendFailsClosed covers write failures")
	}
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := Open(path, Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, Event{Kind: KindAppStarted})
	l.Close()
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	l, err = Open(path, Options{Logger: quiet})
	if err != nil {
		t.Logf("Open refused the read-only file: %v", err) // failing closed too
		return
	}
	defer l.Close()
	_, err = l.Append(context.Background(), Event{Kind: KindAppStopped})
	if err == nil {
		t.Fatal("Append to a read-only file succeeded")
	}
	t.Logf("Append error: %v", err)
}

func TestClosedLogRefusesEverything(t *testing.T) {
	l, _, _ := openTest(t, Options{})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	ctx := context.Background()
	if _, err := l.Query(ctx, Filter{}, 0, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("Query: %v", err)
	}
	if _, err := l.Verify(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Verify: %v", err)
	}
	if _, err := l.Export(ctx, &strings.Builder{}, Filter{}, FormatJSONL); !errors.Is(err, ErrClosed) {
		t.Errorf("Export: %v", err)
	}
	if _, err := l.Prune(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Prune: %v", err)
	}
}

func TestConcurrentAppendsFormOneChain(t *testing.T) {
	l, _, _ := openTest(t, Options{})
	const writers, each = 24, 40
	var wg sync.WaitGroup
	ids := make([][]int64, writers)
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				rec, err := l.Append(context.Background(), Event{Kind: KindCallSubmitted,
					Server: fmt.Sprintf("s%d", w), CallID: fmt.Sprintf("%d-%d", w, i)})
				if err != nil {
					errs <- err
					return
				}
				ids[w] = append(ids[w], rec.ID)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for w, list := range ids {
		for i := 1; i < len(list); i++ {
			if list[i] <= list[i-1] {
				t.Errorf("writer %d: ids %d then %d; one writer's events must keep their order", w, list[i-1], list[i])
			}
		}
		for _, id := range list {
			if seen[id] {
				t.Errorf("id %d given twice", id)
			}
			seen[id] = true
		}
	}
	rep, err := l.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Events != writers*each || rep.LastID != writers*each {
		t.Errorf("Verify: %v; want %d events", rep, writers*each)
	}
}

func TestCloseWhileAppending(t *testing.T) {
	l, path, _ := openTest(t, Options{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	written := 0
	for range 8 {
		wg.Go(func() {
			for {
				_, err := l.Append(context.Background(), Event{Kind: KindCallForwarded})
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				written++
				mu.Unlock()
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	rep, err := VerifyFile(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Events != int64(written) {
		t.Errorf("Verify: %v; %d appends reported success", rep, written)
	}
}

func TestAppendWithEndedContextWritesNothing(t *testing.T) {
	l, _, _ := openTest(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Append(ctx, Event{Kind: KindAppStarted}); !errors.Is(err, context.Canceled) {
		t.Errorf("Append with a cancelled context = %v, want context.Canceled", err)
	}
	page, err := l.Query(context.Background(), Filter{}, 0, 0)
	if err != nil || len(page.Records) != 0 {
		t.Errorf("Query = %+v, %v; want nothing written", page, err)
	}
}
