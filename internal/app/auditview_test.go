package app

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/countersign/countersign/internal/audit"
	"github.com/countersign/countersign/internal/auditanchor"
	"github.com/countersign/countersign/internal/clocktest"
	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/vault"
	"github.com/countersign/countersign/internal/vault/vaulttest"
)

// t0 is when the audit view tests' first event is written.
var t0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

// viewEnv is an AuditView over a real audit log file in a temporary
// directory.
type viewEnv struct {
	view  *AuditView
	log   *audit.Log
	path  string
	clock *clocktest.Clock
	eff   *config.Effective
}

func newViewEnv(t *testing.T, retentionDays int) *viewEnv {
	t.Helper()
	env := &viewEnv{clock: clocktest.New(t0), path: filepath.Join(t.TempDir(), "audit.db")}
	l, err := audit.Open(env.path, audit.Options{Now: env.clock.Now, Logger: discardLog(), RetentionDays: retentionDays})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	env.log = l
	env.eff = &config.Effective{
		Settings:           &config.Config{Servers: []config.Server{{ID: "github", Name: "GitHub"}, {ID: "gitlab"}}},
		AuditRetentionDays: 90,
	}
	env.view = newAuditView(l, env.path, func() *config.Effective { return env.eff })
	return env
}

// add appends events a minute apart.
func (env *viewEnv) add(t *testing.T, evs ...audit.Event) {
	t.Helper()
	for _, ev := range evs {
		if _, err := env.log.Append(context.Background(), ev); err != nil {
			t.Fatalf("Append(%s): %v", ev.Kind, err)
		}
		env.clock.Advance(time.Minute)
	}
}

// history is a day of events (ids 1 to 13), written a minute apart from
// t0, except the last three, written a day later.
func history(t *testing.T, env *viewEnv) {
	t.Helper()
	env.add(t,
		audit.Event{Kind: audit.KindAppStarted, Actor: audit.ActorApp},
		audit.Event{Kind: audit.KindCallSubmitted, Server: "github", Tool: "create_issue", Client: "Claude Desktop", CallID: "1",
			Target: "DEFRA/ffc-pay", Arguments: []byte(`{"title":"Fix login"}`)},
		audit.Event{Kind: audit.KindCallDecided, Server: "github", Tool: "create_issue", Client: "Claude Desktop", CallID: "1",
			Target: "DEFRA/ffc-pay", Outcome: audit.OutcomeApproved, Actor: audit.ActorPerson,
			Arguments: []byte(`{"title":"Fix login"}`), EditedArguments: []byte(`{"title":"Fix the login page"}`)},
		audit.Event{Kind: audit.KindCallForwarded, Server: "github", Tool: "create_issue", Client: "Claude Desktop", CallID: "1", Target: "DEFRA/ffc-pay"},
		audit.Event{Kind: audit.KindCallResult, Server: "github", Tool: "create_issue", Client: "Claude Desktop", CallID: "1",
			Target: "DEFRA/ffc-pay", ResultSize: 512, Redactions: map[string]int{"github token": 1, "aws key": 2}},
		audit.Event{Kind: audit.KindPolicyDenied, Server: "github", Tool: "delete_repository", Client: "Cursor", CallID: "2",
			Target: "DEFRA/other", Outcome: audit.OutcomeDenied, Actor: audit.ActorPolicy, Reason: "DEFRA/other is not in the allowlist"},
		audit.Event{Kind: audit.KindCallDecided, Server: "jira", Tool: "create_issue", Client: "Cursor", CallID: "3",
			Target: "PAY", Outcome: audit.OutcomeDenied, Actor: audit.ActorPerson, Reason: "not needed now"},
		audit.Event{Kind: audit.KindSignIn, Server: "github", Detail: []byte(`{"scopes":["repo","read:org"]}`)},
		audit.Event{Kind: audit.KindSettingsChanged, Actor: audit.ActorPerson, Detail: []byte(`{"from":"5m","setting":"approvalTimeout","to":"10m"}`)},
		audit.Event{Kind: audit.KindCallDecided, Server: "jira", Tool: "search", Client: "Cursor", CallID: "4",
			Outcome: audit.OutcomeTimedOut, Actor: audit.ActorTimeout},
	)
	env.clock.Advance(24 * time.Hour)
	env.add(t,
		audit.Event{Kind: audit.KindCallDecided, Server: "github", Tool: "search_code", Client: "Claude Desktop", CallID: "5",
			Outcome: audit.OutcomeShutDown, Actor: audit.ActorApp},
		audit.Event{Kind: audit.KindCallDecided, Server: "github", Tool: "search_code", Client: "Claude Desktop", CallID: "6",
			Outcome: "new_outcome", Actor: audit.ActorApp},
		audit.Event{Kind: audit.KindAppStopped, Actor: audit.ActorApp},
	)
}

func eventIDs(p AuditPage) []int64 {
	var out []int64
	for _, e := range p.Events {
		out = append(out, e.ID)
	}
	return out
}

func TestAuditViewFilters(t *testing.T) {
	env := newViewEnv(t, 0)
	history(t, env)
	day2 := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		f    AuditFilter
		want []int64
	}{
		{"every event, newest first", AuditFilter{}, []int64{13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}},
		{"decisions: the person's, the timeout's, the policy's and the app's", AuditFilter{Events: Decisions}, []int64{12, 11, 10, 7, 6, 3}},
		{"every step of each call", AuditFilter{Events: CallSteps}, []int64{12, 11, 10, 7, 6, 5, 4, 3, 2}},
		{"sign-ins, settings, start and stop", AuditFilter{Events: AppEvents}, []int64{13, 9, 8, 1}},
		{"one server", AuditFilter{Server: "jira"}, []int64{10, 7}},
		{"one tool", AuditFilter{Events: CallSteps, Tool: "create_issue"}, []int64{7, 5, 4, 3, 2}},
		{"an outcome in the viewer's words", AuditFilter{Outcome: "timed out"}, []int64{10}},
		{"denied covers the person and the policy", AuditFilter{Outcome: "denied"}, []int64{7, 6}},
		{"an outcome the app has no words for", AuditFilter{Outcome: "new_outcome"}, []int64{12}},
		{"from a day", AuditFilter{From: day2}, []int64{13, 12, 11}},
		{"before a day", AuditFilter{To: day2, Events: Decisions}, []int64{10, 7, 6, 3}},
		{"words in the reason", AuditFilter{Text: "allowlist"}, []int64{6}},
		{"words in the target, any case", AuditFilter{Text: "defra/FFC"}, []int64{5, 4, 3, 2}},
		{"everything at once", AuditFilter{Events: Decisions, Server: "github", Outcome: "approved", To: day2, Text: "ffc-pay"}, []int64{3}},
		{"nothing matches", AuditFilter{Server: "gitlab"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := env.view.Query(context.Background(), tt.f, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, eventIDs(p)); diff != "" || p.More {
				t.Errorf("more %v, ids (-want +got)\n%s", p.More, diff)
			}
		})
	}
}

func TestAuditViewShowsEventsInWords(t *testing.T) {
	env := newViewEnv(t, 0)
	history(t, env)
	p, err := env.view.Query(context.Background(), AuditFilter{}, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	later := func(min int) time.Time { return at(min).Add(24 * time.Hour) }
	want := []AuditEvent{
		{ID: 13, Time: later(12), Kind: "Countersign stopped", Actor: "Countersign"},
		{ID: 12, Time: later(11), Kind: "Decided", Server: "github", ServerName: "GitHub", Tool: "search_code", Client: "Claude Desktop",
			CallID: "6", Outcome: "new outcome", Actor: "Countersign"},
		{ID: 11, Time: later(10), Kind: "Decided", Server: "github", ServerName: "GitHub", Tool: "search_code", Client: "Claude Desktop",
			CallID: "5", Outcome: "Countersign shut down", Actor: "Countersign"},
		{ID: 10, Time: at(9), Kind: "Decided", Server: "jira", ServerName: "jira", Tool: "search", Client: "Cursor", CallID: "4",
			Outcome: "timed out", Actor: "timeout"},
		{ID: 9, Time: at(8), Kind: "Settings changed", Actor: "person", Details: "from: 5m, setting: approvalTimeout, to: 10m"},
		{ID: 8, Time: at(7), Kind: "Signed in", Server: "github", ServerName: "GitHub", Details: "scopes: repo read:org"},
		{ID: 7, Time: at(6), Kind: "Decided", Server: "jira", ServerName: "jira", Tool: "create_issue", Client: "Cursor", CallID: "3",
			Target: "PAY", Outcome: "denied", Actor: "person", Details: "not needed now"},
		{ID: 6, Time: at(5), Kind: "Blocked by policy", Server: "github", ServerName: "GitHub", Tool: "delete_repository", Client: "Cursor",
			CallID: "2", Target: "DEFRA/other", Outcome: "denied", Actor: "policy", Details: "DEFRA/other is not in the allowlist"},
		{ID: 5, Time: at(4), Kind: "Result", Server: "github", ServerName: "GitHub", Tool: "create_issue", Client: "Claude Desktop",
			CallID: "1", Target: "DEFRA/ffc-pay", Outcome: "answered", Details: "512 bytes; secrets removed: 2 aws key, 1 github token",
			Redactions: "2 aws key, 1 github token"},
		{ID: 4, Time: at(3), Kind: "Sent to server", Server: "github", ServerName: "GitHub", Tool: "create_issue", Client: "Claude Desktop",
			CallID: "1", Target: "DEFRA/ffc-pay"},
		{ID: 3, Time: at(2), Kind: "Decided", Server: "github", ServerName: "GitHub", Tool: "create_issue", Client: "Claude Desktop",
			CallID: "1", Target: "DEFRA/ffc-pay", Outcome: "approved", Actor: "person", Edited: true,
			Waited: time.Minute, Arguments: "{\n  \"title\": \"Fix login\"\n}", EditedArguments: "{\n  \"title\": \"Fix the login page\"\n}"},
		{ID: 2, Time: at(1), Kind: "Asked", Server: "github", ServerName: "GitHub", Tool: "create_issue", Client: "Claude Desktop",
			CallID: "1", Target: "DEFRA/ffc-pay", Arguments: "{\n  \"title\": \"Fix login\"\n}"},
		{ID: 1, Time: at(0), Kind: "Countersign started", Actor: "Countersign"},
	}
	if diff := cmp.Diff(want, p.Events, cmpopts.IgnoreFields(AuditEvent{}, "Hash", "PrevHash")); diff != "" {
		t.Errorf("events (-want +got)\n%s", diff)
	}
	// Each event shows its place in the chain: its hash, and the hash of
	// the event before it.
	for i, e := range p.Events {
		if len(e.Hash) != 64 || (i+1 < len(p.Events) && e.PrevHash != p.Events[i+1].Hash) {
			t.Errorf("event %d: hash %q, prev %q", e.ID, e.Hash, e.PrevHash)
		}
	}
	if last := p.Events[len(p.Events)-1]; last.PrevHash != strings.Repeat("0", 64) {
		t.Errorf("the first event links to %q, not the zero hash", last.PrevHash)
	}
}

func TestAuditViewServerNamesFollowTheSettings(t *testing.T) {
	env := newViewEnv(t, 0)
	env.add(t, audit.Event{Kind: audit.KindSignIn, Server: "github"})
	env.eff = &config.Effective{Settings: &config.Config{Servers: []config.Server{{ID: "github", Name: "GitHub Enterprise"}}}}
	p, err := env.view.Query(context.Background(), AuditFilter{}, 0, 10)
	if err != nil || len(p.Events) != 1 || p.Events[0].ServerName != "GitHub Enterprise" {
		t.Errorf("Query = %+v, %v; want the name in the current settings", p.Events, err)
	}
}

func TestAuditViewResultErrors(t *testing.T) {
	env := newViewEnv(t, 0)
	env.add(t, audit.Event{Kind: audit.KindCallResult, Server: "github", Tool: "t", CallID: "1", IsError: true, Reason: "rate limited", ResultSize: 20})
	p, err := env.view.Query(context.Background(), AuditFilter{}, 0, 10)
	if err != nil || len(p.Events) != 1 {
		t.Fatalf("Query = %+v, %v", p, err)
	}
	if e := p.Events[0]; e.Outcome != "error" || e.Details != "rate limited; 20 bytes" {
		t.Errorf("an error result reads %q, %q", e.Outcome, e.Details)
	}
}

func TestAuditViewPaging(t *testing.T) {
	env := newViewEnv(t, 0)
	for i := range 250 {
		env.add(t, audit.Event{Kind: audit.KindCallDecided, Server: "github", Tool: "create_issue",
			Outcome: audit.OutcomeApproved, Actor: audit.ActorPerson, CallID: string(rune('a' + i%26))})
		if i%50 == 0 {
			env.add(t, audit.Event{Kind: audit.KindCallForwarded, Server: "github", Tool: "create_issue"})
		}
	}
	ctx := context.Background()
	f := AuditFilter{Events: Decisions}
	var got []int64
	var sizes []int
	before := int64(0)
	for page := 0; ; page++ {
		p, err := env.view.Query(ctx, f, before, 100)
		if err != nil {
			t.Fatal(err)
		}
		if page == 0 {
			// Events written while the person pages do not shift later pages.
			env.add(t, audit.Event{Kind: audit.KindCallDecided, Server: "github", Tool: "x", Outcome: audit.OutcomeDenied})
		}
		got = append(got, eventIDs(p)...)
		sizes = append(sizes, len(p.Events))
		if !p.More {
			if p.Next != 0 {
				t.Errorf("the last page has Next %d", p.Next)
			}
			break
		}
		if p.Next != p.Events[len(p.Events)-1].ID {
			t.Fatalf("page %d: Next %d is not its last id %d", page, p.Next, p.Events[len(p.Events)-1].ID)
		}
		before = p.Next
	}
	if diff := cmp.Diff([]int{100, 100, 50}, sizes); diff != "" {
		t.Errorf("page sizes (-want +got)\n%s", diff)
	}
	if len(got) != 250 {
		t.Fatalf("paged through %d events, want 250", len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i] >= got[i-1] {
			t.Fatalf("ids not newest first without repeats at %d: %d then %d", i, got[i-1], got[i])
		}
	}
	if _, err := env.view.Query(ctx, f, -1, 100); err == nil {
		t.Error("a negative page start was accepted")
	}
}

func TestAuditViewQueryErrors(t *testing.T) {
	env := newViewEnv(t, 0)
	_, err := env.view.Query(context.Background(), AuditFilter{Text: strings.Repeat("word ", 20)}, 0, 10)
	if err == nil || !strings.Contains(err.Error(), "at most 16") {
		t.Errorf("a search of 20 words: %v", err)
	}
	env.log.Close()
	if _, err := env.view.Query(context.Background(), AuditFilter{}, 0, 10); err == nil {
		t.Error("Query of a closed log succeeded")
	}
	if _, err := env.view.Info(context.Background()); err == nil {
		t.Error("Info of a closed log succeeded")
	}
}

func TestAuditViewInfo(t *testing.T) {
	env := newViewEnv(t, 0)
	history(t, env)
	info, err := env.view.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantServers := []AuditServer{{ID: "github", Name: "GitHub"}, {ID: "gitlab", Name: "gitlab"}, {ID: "jira", Name: "jira"}}
	if diff := cmp.Diff(wantServers, info.Servers); diff != "" {
		t.Errorf("servers: the log's and the settings' (-want +got)\n%s", diff)
	}
	if diff := cmp.Diff([]string{"create_issue", "delete_repository", "search", "search_code"}, info.Tools); diff != "" {
		t.Errorf("tools (-want +got)\n%s", diff)
	}
	if len(info.Outcomes) != 12 || info.Outcomes[0] != "approved" || info.Outcomes[2] != "timed out" {
		t.Errorf("outcomes %q", info.Outcomes)
	}
	for _, want := range []string{env.path, "90 days", "Verify integrity"} {
		if !strings.Contains(info.Store, want) {
			t.Errorf("store %q does not mention %q", info.Store, want)
		}
	}
}

func TestAuditViewOutcomeWordsRoundTrip(t *testing.T) {
	env := newViewEnv(t, 0)
	info, err := env.view.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, w := range info.Outcomes {
		if seen[w] {
			t.Errorf("%q names two outcomes", w)
		}
		seen[w] = true
		if got := outcomeWord(storedOutcome(w)); got != w {
			t.Errorf("%q → %q → %q", w, storedOutcome(w), got)
		}
	}
}

func TestEveryKindHasWords(t *testing.T) {
	listed := map[audit.Kind]bool{}
	for _, s := range EventSets() {
		for _, k := range s.kinds() {
			listed[k] = true
		}
	}
	for _, k := range audit.Kinds() {
		if kindWords[k] == "" {
			t.Errorf("the viewer has no words for %s", k)
		}
		if !listed[k] {
			t.Errorf("%s is only listed under All events", k)
		}
	}
}

func TestAuditViewExport(t *testing.T) {
	env := newViewEnv(t, 0)
	history(t, env)
	ctx := context.Background()
	t.Run("csv of the filtered events, oldest first", func(t *testing.T) {
		var b bytes.Buffer
		n, err := env.view.Export(ctx, AuditFilter{Events: Decisions, Server: "jira"}, ExportCSV, &b)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(&b).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 || len(rows) != 3 || rows[0][0] != "id" || rows[1][0] != "7" || rows[2][0] != "10" {
			t.Errorf("wrote %d events: %q", n, rows)
		}
	})
	t.Run("json lines that check", func(t *testing.T) {
		var b bytes.Buffer
		n, err := env.view.Export(ctx, AuditFilter{}, ExportJSONL, &b)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := audit.CheckExport(&b)
		if err != nil || !rep.OK() || rep.Events != 13 || n != 13 {
			t.Errorf("wrote %d; CheckExport = %v, %v", n, rep, err)
		}
	})
	t.Run("nothing matches", func(t *testing.T) {
		var b bytes.Buffer
		n, err := env.view.Export(ctx, AuditFilter{Server: "gitlab"}, ExportJSONL, &b)
		if err != nil || n != 0 || b.Len() != 0 {
			t.Errorf("wrote %d events, %q, %v", n, b.String(), err)
		}
	})
	t.Run("unknown format", func(t *testing.T) {
		if _, err := env.view.Export(ctx, AuditFilter{}, "xml", &bytes.Buffer{}); err == nil {
			t.Error("no error")
		}
	})
}

func TestAuditViewVerify(t *testing.T) {
	env := newViewEnv(t, 0)
	history(t, env)
	ctx := context.Background()
	got, err := env.view.Verify(ctx)
	if diff := cmp.Diff(Integrity{OK: true, Checked: 13, LastID: 13}, got); diff != "" || err != nil {
		t.Fatalf("an untouched log: %v (-want +got)\n%s", err, diff)
	}

	// Someone with the file edits a reason.
	db, err := sql.Open("sqlite", env.path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{`DROP TRIGGER events_no_update`, `UPDATE events SET reason = 'approved' WHERE id = 7`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	got, err = env.view.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.OK || got.Checked != 6 || !strings.HasPrefix(got.Problem, "event 7 (content changed): its content was changed after it was written") {
		t.Errorf("a changed event: %+v", got)
	}
}

func TestAuditViewVerifySaysWhatWasPruned(t *testing.T) {
	env := newViewEnv(t, 1)
	env.add(t, audit.Event{Kind: audit.KindAppStarted}, audit.Event{Kind: audit.KindAppStopped})
	env.clock.Advance(72 * time.Hour)
	if _, err := env.log.Prune(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, err := env.view.Verify(context.Background())
	if err != nil || !got.OK || got.Checked != 1 {
		t.Fatalf("Verify = %+v, %v; want OK with the prune's own event", got, err)
	}
	if want := "Events up to number 2 (the last written on "; !strings.HasPrefix(got.Pruned, want) {
		t.Errorf("pruned note %q, want it to start %q", got.Pruned, want)
	}
}

// FuzzDetailText checks that any detail the log holds reads as text without
// a panic, and that an object's keys all appear.
func FuzzDetailText(f *testing.F) {
	f.Add([]byte(`{"from":"5m","setting":"approvalTimeout","to":"10m"}`))
	f.Add([]byte(`{"scopes":["repo","read:org"],"n":3,"on":true,"x":null}`))
	f.Add([]byte(`[1,2]`))
	f.Add([]byte(`"text"`))
	f.Add([]byte(`{"a":{"b":[{"c":1}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got := detailText(b)
		var m map[string]json.RawMessage
		if json.Unmarshal(b, &m) != nil {
			return
		}
		for k := range m {
			if !strings.Contains(got, k+": ") {
				t.Errorf("detailText(%q) = %q lacks key %q", b, got, k)
			}
		}
	})
}

func TestAuditViewInterruptedCallsAndOmittedArguments(t *testing.T) {
	env := newViewEnv(t, 0)
	big := json.RawMessage(`{"body":"` + strings.Repeat("x", audit.MaxArgumentBytes) + `"}`)
	env.add(t,
		audit.Event{Kind: audit.KindCallSubmitted, Server: "github", Tool: "t", CallID: "7", Arguments: big},
		audit.Event{Kind: audit.KindCallDecided, Server: "github", Tool: "t", CallID: "7", Outcome: audit.OutcomeInterrupted,
			Actor: audit.ActorApp, Reason: "Countersign stopped before anyone decided on this call: it was not run."},
		audit.Event{Kind: audit.KindCallResult, Server: "github", Tool: "t", CallID: "8", Outcome: audit.OutcomeNotSent,
			Actor: audit.ActorApp, IsError: true, Reason: "Not sent to the server."},
	)
	p, err := env.view.Query(context.Background(), AuditFilter{}, 0, 10)
	if err != nil || len(p.Events) != 3 {
		t.Fatalf("Query = %+v, %v", p, err)
	}
	if e := p.Events[2]; !strings.Contains(e.Details, "arguments were too large to keep ("+
		fmt.Sprint(len(big))+" bytes): only their SHA-256 hash") {
		t.Errorf("submitted with large arguments reads %q", e.Details)
	}
	if e := p.Events[1]; e.Outcome != "interrupted: Countersign stopped" || e.Actor != "Countersign" {
		t.Errorf("an interrupted call reads %q by %q", e.Outcome, e.Actor)
	}
	if e := p.Events[0]; e.Outcome != "not sent to the server" || e.Details != "Not sent to the server." {
		t.Errorf("a call not sent reads %q, %q", e.Outcome, e.Details)
	}
	p, err = env.view.Query(context.Background(), AuditFilter{Outcome: "interrupted: Countersign stopped"}, 0, 10)
	if err != nil || len(p.Events) != 1 || p.Events[0].CallID != "7" {
		t.Errorf("filtering by the interrupted outcome: %+v, %v", p, err)
	}
}

// TestAuditViewVerifyFindsCutOffEvents keeps the log's head in a keychain,
// deletes the newest rows with the sqlite driver, and expects Verify to
// say the log ends before the event the keychain recorded.
func TestAuditViewVerifyFindsCutOffEvents(t *testing.T) {
	env := newViewEnv(t, 0)
	v := vault.Open(vault.Options{Keyring: vaulttest.NewKeyring(), Dir: t.TempDir()})
	k := auditanchor.NewKeeper(env.log, v, env.path, discardLog())
	env.view.anchor = func() (audit.Head, bool, error) { return auditanchor.Read(v, env.path) }
	history(t, env)
	k.Flush()
	ctx := context.Background()
	if got, err := env.view.Verify(ctx); err != nil || !got.OK || got.Anchor != "" {
		t.Fatalf("an untouched log: %+v, %v", got, err)
	}
	db, err := sql.Open("sqlite", env.path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{`DROP TRIGGER events_no_delete`, `DELETE FROM events WHERE id > 10`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	got, err := env.view.Verify(ctx)
	if err != nil || got.OK || !strings.Contains(got.Problem, "the log ends at event 10 but event 13 was recorded") {
		t.Fatalf("Verify = %+v, %v; want the cut-off events named", got, err)
	}

	// A keychain that cannot be read costs the check, not the verify.
	env.view.anchor = func() (audit.Head, bool, error) { return audit.Head{}, false, vault.ErrUnavailable }
	got, err = env.view.Verify(ctx)
	if err != nil || !got.OK || !strings.Contains(got.Anchor, "could not be read") {
		t.Fatalf("Verify without the keychain = %+v, %v; want OK, saying the anchor is unavailable", got, err)
	}
}

// A result the AI app never got reads in plain words, with the size of
// the server's answer.
func TestAuditViewResultNotDelivered(t *testing.T) {
	env := newViewEnv(t, 0)
	env.add(t, audit.Event{Kind: audit.KindCallResult, Server: "github", Tool: "t", CallID: "9", Outcome: audit.OutcomeNotDelivered,
		Actor: audit.ActorApp, ResultSize: 42, Reason: "Not delivered: the AI app had gone before the answer could be handed to it."})
	p, err := env.view.Query(context.Background(), AuditFilter{}, 0, 10)
	if err != nil || len(p.Events) != 1 {
		t.Fatalf("Query = %+v, %v", p, err)
	}
	e := p.Events[0]
	if e.Outcome != "not delivered: the AI app had gone" || e.Actor != "Countersign" || !strings.Contains(e.Details, "the AI app had gone before the answer") || !strings.Contains(e.Details, "42 bytes") {
		t.Errorf("a result not delivered reads %q by %q: %q", e.Outcome, e.Actor, e.Details)
	}
}
