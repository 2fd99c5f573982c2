package ui

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"
	"github.com/google/go-cmp/cmp"

	"github.com/countersign/countersign/internal/app"
)

// auditQuery is one Query call the fake saw.
type auditQuery struct {
	Filter app.AuditFilter
	Before int64
}

// fakeAudit is an AuditService over fixed events, newest first, paged by
// id as the real log is. Its zero value is an empty log.
type fakeAudit struct {
	mu        sync.Mutex
	events    []app.AuditEvent
	info      app.AuditInfo
	infoErr   error
	queryErr  error
	queries   []auditQuery
	verify    app.Integrity
	verifyErr error
	exportErr error
	exports   []app.AuditFilter
	// hold makes queries for this server wait until released is closed.
	hold     string
	released chan struct{}
	// exportWaits makes Export wait for its context to end.
	exportWaits bool
}

func (f *fakeAudit) Info(context.Context) (app.AuditInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.info, f.infoErr
}

func (f *fakeAudit) Query(_ context.Context, flt app.AuditFilter, before int64, limit int) (app.AuditPage, error) {
	f.mu.Lock()
	f.queries = append(f.queries, auditQuery{flt, before})
	hold, released := f.hold != "" && flt.Server == f.hold, f.released
	f.mu.Unlock()
	if hold {
		<-released
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.queryErr != nil {
		return app.AuditPage{}, f.queryErr
	}
	var p app.AuditPage
	for _, e := range f.events {
		switch {
		case before > 0 && e.ID >= before,
			flt.Server != "" && e.Server != flt.Server,
			flt.Tool != "" && e.Tool != flt.Tool,
			flt.Outcome != "" && e.Outcome != flt.Outcome:
			continue
		}
		if len(p.Events) == limit {
			p.More, p.Next = true, p.Events[limit-1].ID
			break
		}
		p.Events = append(p.Events, e)
	}
	return p, nil
}

// query returns the i-th query, and how many there were.
func (f *fakeAudit) query(i int) (auditQuery, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i >= 0 && i < len(f.queries) {
		return f.queries[i], len(f.queries)
	}
	return auditQuery{}, len(f.queries)
}

func (f *fakeAudit) Export(ctx context.Context, flt app.AuditFilter, format app.ExportFormat, w io.Writer) (int64, error) {
	f.mu.Lock()
	f.exports = append(f.exports, flt)
	err, wait, n := f.exportErr, f.exportWaits, len(f.events)
	f.mu.Unlock()
	if _, werr := io.WriteString(w, string(format)+" export\n"); werr != nil {
		return 0, werr
	}
	if wait {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	if err != nil {
		return 0, err
	}
	return int64(n), nil
}

func (f *fakeAudit) Verify(context.Context) (app.Integrity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.verify, f.verifyErr
}

// set changes the fake under its lock.
func (f *fakeAudit) set(change func(f *fakeAudit)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f)
}

// auditEvents are n events a minute apart, newest first, with ids n to 1.
func auditEvents(n int) []app.AuditEvent {
	out := make([]app.AuditEvent, n)
	for i := range out {
		id := int64(n - i)
		e := app.AuditEvent{ID: id, Time: T0.Add(-time.Duration(i) * time.Minute), CallID: strconv.FormatInt(id, 10),
			Kind: "Decided", Server: "github", ServerName: "GitHub", Tool: "create_issue", Client: "Claude Desktop",
			Target: "DEFRA/ffc-pay", Outcome: "approved", Actor: "person"}
		switch i % 3 {
		case 1:
			e.Outcome, e.Details = "denied", "use the staging project"
		case 2:
			e.Kind, e.Server, e.ServerName, e.Tool, e.Target, e.Outcome, e.Actor, e.Details =
				"Blocked by policy", "jira", "Jira", "deleteProject", "PAY", "denied", "policy", "PAY is not in the allowlist"
		}
		out[i] = e
	}
	if n > 0 {
		out[0].Edited = true
	}
	return out
}

var auditInfo = app.AuditInfo{
	Store:    "Events are kept for 180 days in /home/me/.config/countersign/audit.db.",
	Servers:  []app.AuditServer{{ID: "github", Name: "GitHub"}, {ID: "jira", Name: "jira"}},
	Tools:    []string{"create_issue", "deleteProject"},
	Outcomes: []string{"approved", "denied", "timed out"},
}

func openAudit(t *testing.T, events []app.AuditEvent) *harness {
	t.Helper()
	h := newHarness(t, newFixedQueue(t))
	h.audit.set(func(f *fakeAudit) { f.events, f.info = events, auditInfo })
	h.d.audit.show()
	h.waitFor("the first page", func() bool {
		_, n := h.audit.query(0)
		return n > 0 && h.d.audit.pageLabel.Text != "Loading…"
	})
	return h
}

// lastQuery waits until n queries have been answered and returns the last.
func (h *harness) lastQuery(n int) auditQuery {
	h.t.Helper()
	h.waitFor("query "+strconv.Itoa(n), func() bool {
		_, got := h.audit.query(0)
		return got >= n && h.d.audit.pageLabel.Text != "Loading…"
	})
	q, got := h.audit.query(n - 1)
	if got != n {
		h.t.Fatalf("%d queries, want %d", got, n)
	}
	return q
}

func TestAuditGolden(t *testing.T) {
	h := openAudit(t, auditEvents(3))
	assertMarkup(t, "audit.xml", h.d.audit.window().Canvas())
}

func TestAuditGoldenEmpty(t *testing.T) {
	h := openAudit(t, nil)
	a := h.d.audit
	if a.pageLabel.Text != "No events match these filters." || !a.csv.Disabled() || !a.jsonl.Disabled() || !a.older.Disabled() {
		t.Errorf("empty: %q, export enabled %v", a.pageLabel.Text, !a.csv.Disabled())
	}
	assertMarkup(t, "audit_empty.xml", a.window().Canvas())
}

// TestAuditGoldenPaged is the second page, with a date typed wrong and a
// broken chain reported.
func TestAuditGoldenPaged(t *testing.T) {
	h := openAudit(t, auditEvents(250))
	a := h.d.audit
	test.Tap(a.older)
	h.lastQuery(2)
	test.Type(a.from, "2026-13-01")
	h.audit.set(func(f *fakeAudit) {
		f.verify = app.Integrity{Checked: 6, Problem: "event 7 (content changed): its content was changed after it was written (stored hash 1a2b3c4d5e6f, content hashes to 9f8e7d6c5b4a)."}
	})
	test.Tap(a.verify)
	h.waitFor("the check", func() bool { return strings.HasPrefix(a.result.Text, "Problem") })
	assertMarkup(t, "audit_paged.xml", a.window().Canvas())
}

func TestAuditShowsDecisionsFirst(t *testing.T) {
	h := openAudit(t, auditEvents(3))
	q, _ := h.audit.query(0)
	if diff := cmp.Diff(auditQuery{Filter: app.AuditFilter{Events: app.Decisions}}, q); diff != "" {
		t.Errorf("first query (-want +got)\n%s", diff)
	}
	if got := auditCell(h.d.audit.page.Events[0], 6); got != "approved (edited)" {
		t.Errorf("an edited approval reads %q", got)
	}
}

func TestAuditFilters(t *testing.T) {
	h := openAudit(t, auditEvents(3))
	a := h.d.audit
	n := 1
	// Menus search at once.
	a.events.SetSelected(app.AllEvents.String())
	n++
	h.lastQuery(n)
	a.server.SetSelected("GitHub")
	n++
	h.lastQuery(n)
	a.tool.SetSelected("deleteProject")
	n++
	if q := h.lastQuery(n); len(a.page.Events) != 0 || q.Filter.Tool != "deleteProject" || q.Filter.Server != "github" {
		t.Errorf("query %+v showed %d events", q, len(a.page.Events))
	}
	a.outcome.SetSelected("denied")
	n++
	h.lastQuery(n)
	// Typed filters wait for Search or Enter.
	test.Type(a.text, `"Fix login" ffc`)
	a.from.SetText("2026-11-01")
	a.to.SetText("2026-11-21")
	if _, got := h.audit.query(0); got != n {
		t.Fatalf("typing searched: %d queries", got)
	}
	test.Tap(a.search)
	n++
	q := h.lastQuery(n)
	want := app.AuditFilter{Events: app.AllEvents, Server: "github", Tool: "deleteProject", Outcome: "denied", Text: `"Fix login" ffc`,
		From: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)}
	if diff := cmp.Diff(auditQuery{Filter: want}, q); diff != "" {
		t.Errorf("query (-want +got)\n%s", diff)
	}
	a.text.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	n++
	h.lastQuery(n)

	for _, bad := range []struct{ from, to, why string }{
		{"21/11/2026", "", "Write dates as YYYY-MM-DD, like 2026-11-21."},
		{"", "2026-11-31", "Write dates as YYYY-MM-DD, like 2026-11-21."},
		{"2026-11-22", "2026-11-21", "The From date is after the To date."},
	} {
		a.from.SetText(bad.from)
		a.to.SetText(bad.to)
		if !a.search.Disabled() || !a.dateCheck.Visible() || a.dateCheck.Text != bad.why {
			t.Errorf("dates %q..%q: search enabled %v, says %q", bad.from, bad.to, !a.search.Disabled(), a.dateCheck.Text)
		}
		a.outcome.SetSelected(anyOutcome) // a menu does not search with bad dates either
		a.outcome.SetSelected("denied")
		a.from.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	}
	h.settle()
	if _, got := h.audit.query(0); got != n {
		t.Errorf("searched with bad dates: %d queries, want %d", got, n)
	}
	a.from.SetText("2026-11-21")
	a.to.SetText("2026-11-21")
	if a.search.Disabled() || a.dateCheck.Visible() {
		t.Error("one whole day is refused")
	}
}

func TestAuditPaging(t *testing.T) {
	h := openAudit(t, auditEvents(250))
	a := h.d.audit
	type state struct {
		Label        string
		Newer, Older bool
		First, Last  int64
	}
	now := func() state {
		s := state{Label: a.pageLabel.Text, Newer: !a.newer.Disabled(), Older: !a.older.Disabled()}
		if n := len(a.page.Events); n > 0 {
			s.First, s.Last = a.page.Events[0].ID, a.page.Events[n-1].ID
		}
		return s
	}
	steps := []struct {
		name   string
		tap    func()
		before int64
		want   state
	}{
		{"the newest", nil, 0, state{"Events 1–100 (the newest) · older events available", false, true, 250, 151}},
		{"older", a.older.OnTapped, 151, state{"Events 101–200 · older events available", true, true, 150, 51}},
		{"older again", a.older.OnTapped, 51, state{"Events 201–250 · no older events", true, false, 50, 1}},
		{"newer", a.newer.OnTapped, 151, state{"Events 101–200 · older events available", true, true, 150, 51}},
		{"newer again", a.newer.OnTapped, 0, state{"Events 1–100 (the newest) · older events available", false, true, 250, 151}},
	}
	for i, s := range steps {
		if s.tap != nil {
			s.tap()
			if !a.newer.Disabled() || !a.older.Disabled() || a.pageLabel.Text != "Loading…" {
				t.Errorf("%s: paging is enabled while a page loads", s.name)
			}
			test.Tap(a.older) // ignored while it loads
		}
		q := h.lastQuery(i + 1)
		if q.Before != s.before {
			t.Errorf("%s: queried before %d, want %d", s.name, q.Before, s.before)
		}
		if diff := cmp.Diff(s.want, now()); diff != "" {
			t.Errorf("%s (-want +got)\n%s", s.name, diff)
		}
	}

	// A search starts again from the newest.
	test.Tap(a.older)
	h.lastQuery(6)
	test.Tap(a.search)
	if q := h.lastQuery(7); q.Before != 0 || a.pageLabel.Text != "Events 1–100 (the newest) · older events available" {
		t.Errorf("search from page 2: before %d, %q", q.Before, a.pageLabel.Text)
	}
}

func TestAuditKeepsOnlyTheLatestSearch(t *testing.T) {
	h := openAudit(t, auditEvents(3))
	a := h.d.audit
	release := make(chan struct{})
	h.audit.set(func(f *fakeAudit) { f.hold, f.released = "github", release })
	a.server.SetSelected("GitHub") // its answer is held
	h.waitFor("the held query", func() bool { _, n := h.audit.query(0); return n == 2 })
	a.server.SetSelected("jira")
	h.lastQuery(3)
	if a.filter.Server != "jira" || len(a.page.Events) != 1 {
		t.Fatalf("showing %q with %d events", a.filter.Server, len(a.page.Events))
	}
	close(release)
	time.Sleep(20 * time.Millisecond)
	h.settle()
	if a.filter.Server != "jira" || len(a.page.Events) != 1 || a.pageLabel.Text != "Events 1–1 (the newest) · no older events" {
		t.Errorf("a late answer replaced the latest: %q, %d events, %q", a.filter.Server, len(a.page.Events), a.pageLabel.Text)
	}
}

func TestAuditSearchFailureKeepsThePage(t *testing.T) {
	h := openAudit(t, auditEvents(150))
	a := h.d.audit
	h.audit.set(func(f *fakeAudit) { f.queryErr = errors.New("search has 17 words; at most 16 are allowed") })
	test.Tap(a.older)
	h.lastQuery(2)
	if a.result.Text != "Search failed: search has 17 words; at most 16 are allowed" ||
		len(a.page.Events) != 100 || a.older.Disabled() || !a.newer.Disabled() ||
		a.pageLabel.Text != "Events 1–100 (the newest) · older events available" {
		t.Errorf("after a failure: %q, %d events, %q", a.result.Text, len(a.page.Events), a.pageLabel.Text)
	}
}

func TestAuditOpenFailure(t *testing.T) {
	h := newHarness(t, newFixedQueue(t))
	h.audit.set(func(f *fakeAudit) { f.infoErr = errors.New("audit log is closed") })
	a := h.d.audit
	a.show()
	h.waitFor("the failure", func() bool { return a.result.Text != "" })
	if a.result.Text != "Could not open the audit log: audit log is closed" || !a.verify.Disabled() || !a.csv.Disabled() {
		t.Errorf("result %q, verify enabled %v", a.result.Text, !a.verify.Disabled())
	}
	if _, n := h.audit.query(0); n != 0 {
		t.Errorf("%d queries of a log that did not open", n)
	}
}

// buffer is an export destination that records being closed.
type buffer struct {
	mu sync.Mutex
	strings.Builder
	closed bool
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Builder.Write(p)
}

func (b *buffer) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return nil
}

func (b *buffer) text() (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.String(), b.closed
}

func TestAuditExport(t *testing.T) {
	h := openAudit(t, auditEvents(3))
	a := h.d.audit
	a.server.SetSelected("jira")
	h.lastQuery(2)
	a.to.SetText("2026-12-01") // typed but not searched: the export is of what is shown

	var out buffer
	var asked string
	a.save = func(name string, done func(io.WriteCloser, error)) { asked = name; done(&out, nil) }
	test.Tap(a.csv)
	if !a.csv.Disabled() || !a.jsonl.Disabled() || !a.cancel.Visible() || a.result.Text != "Exporting to countersign-audit-2026-11-21.csv…" {
		t.Errorf("while exporting: %q, export enabled %v", a.result.Text, !a.csv.Disabled())
	}
	h.waitFor("the export", func() bool { return strings.HasPrefix(a.result.Text, "Exported") })
	text, closed := out.text()
	if asked != "countersign-audit-2026-11-21.csv" || text != "csv export\n" || !closed {
		t.Errorf("asked %q, wrote %q, closed %v", asked, text, closed)
	}
	if a.result.Text != "Exported 3 events as CSV to countersign-audit-2026-11-21.csv." || a.csv.Disabled() || a.cancel.Visible() {
		t.Errorf("result %q", a.result.Text)
	}
	h.audit.mu.Lock()
	exported := h.audit.exports[0]
	h.audit.mu.Unlock()
	if diff := cmp.Diff(app.AuditFilter{Events: app.Decisions, Server: "jira"}, exported); diff != "" {
		t.Errorf("exported filter (-want +got)\n%s", diff)
	}

	t.Run("fails", func(t *testing.T) {
		h.audit.set(func(f *fakeAudit) { f.exportErr = errors.New("no space left on device") })
		a.save = func(name string, done func(io.WriteCloser, error)) { done(&buffer{}, nil) }
		test.Tap(a.jsonl)
		h.waitFor("the failure", func() bool { return strings.HasPrefix(a.result.Text, "Export failed") })
		if a.result.Text != "Export failed: no space left on device. countersign-audit-2026-11-21.jsonl is incomplete." || a.jsonl.Disabled() {
			t.Errorf("result %q", a.result.Text)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		h.audit.set(func(f *fakeAudit) { f.exportErr, f.exportWaits = nil, true })
		test.Tap(a.jsonl)
		test.Tap(a.csv) // ignored: one export at a time
		test.Tap(a.cancel)
		h.waitFor("the cancel", func() bool { return strings.HasPrefix(a.result.Text, "Export cancelled") })
		if a.result.Text != "Export cancelled: countersign-audit-2026-11-21.jsonl is incomplete." || a.jsonl.Disabled() || a.cancel.Visible() {
			t.Errorf("result %q", a.result.Text)
		}
		h.audit.mu.Lock()
		n := len(h.audit.exports)
		h.audit.mu.Unlock()
		if n != 3 {
			t.Errorf("%d exports, want 3", n)
		}
	})
	t.Run("the file cannot be opened", func(t *testing.T) {
		a.save = func(name string, done func(io.WriteCloser, error)) { done(nil, errors.New("permission denied")) }
		test.Tap(a.csv)
		if a.result.Text != "Export failed: the file could not be opened: permission denied" {
			t.Errorf("result %q", a.result.Text)
		}
	})
	t.Run("the person cancels the dialog", func(t *testing.T) {
		a.result.SetText("")
		a.save = func(name string, done func(io.WriteCloser, error)) { done(nil, nil) }
		test.Tap(a.csv)
		if a.result.Text != "" || a.csv.Disabled() {
			t.Errorf("result %q", a.result.Text)
		}
	})
}

func TestAuditVerify(t *testing.T) {
	h := openAudit(t, auditEvents(3))
	a := h.d.audit
	tests := []struct {
		name   string
		res    app.Integrity
		err    error
		prefix string
		want   string
	}{
		{"intact", app.Integrity{OK: true, Checked: 1234}, nil, "Intact",
			"Intact: 1234 events checked, none changed or missing."},
		{"intact after a prune", app.Integrity{OK: true, Checked: 1, Pruned: "Events up to number 9 were removed."}, nil, "Intact",
			"Intact: 1 event checked, none changed or missing. Events up to number 9 were removed."},
		{"changed", app.Integrity{Checked: 6, Problem: "event 7 (content changed): its content was changed after it was written."}, nil, "Problem",
			"Problem found: event 7 (content changed): its content was changed after it was written. 6 events before it verified."},
		{"unreadable", app.Integrity{}, errors.New("disk I/O error"), "Could not",
			"Could not check the log: disk I/O error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.audit.set(func(f *fakeAudit) { f.verify, f.verifyErr = tt.res, tt.err })
			test.Tap(a.verify)
			if !a.verify.Disabled() || a.result.Text != "Checking every event in the audit log…" {
				t.Errorf("while checking: %q, verify enabled %v", a.result.Text, !a.verify.Disabled())
			}
			h.waitFor("the check", func() bool { return strings.HasPrefix(a.result.Text, tt.prefix) })
			if a.result.Text != tt.want || a.verify.Disabled() {
				t.Errorf("result %q, want %q", a.result.Text, tt.want)
			}
		})
	}
}

func TestPagePosition(t *testing.T) {
	tests := []struct {
		index, n int
		more     bool
		want     string
	}{
		{0, 0, false, "No events match these filters."},
		{2, 0, false, "No older events match."},
		{0, 1, false, "Events 1–1 (the newest) · no older events"},
		{0, 100, true, "Events 1–100 (the newest) · older events available"},
		{3, 7, false, "Events 301–307 · no older events"},
	}
	for _, tt := range tests {
		if got := pagePosition(tt.index, tt.n, tt.more); got != tt.want {
			t.Errorf("pagePosition(%d, %d, %v) = %q, want %q", tt.index, tt.n, tt.more, got, tt.want)
		}
	}
}

// Selecting an event shows every field of it, whole, in the detail pane:
// a long deny reason can be read in the app.
func TestAuditDetailPane(t *testing.T) {
	evs := auditEvents(3)
	long := "Denied: this would create an issue in the production project, which is frozen until the release on Friday; use the staging project PAY-STAGING instead and ask Sam if unsure."
	evs[1].Details = long
	evs[1].Waited = 3*time.Minute + 5*time.Second
	evs[1].Arguments = "{\n  \"repo\": \"DEFRA/ffc-pay\",\n  \"title\": \"Fix [redacted: github token]\"\n}"
	evs[1].Redactions = "1 github token"
	evs[1].Hash = "5c3f436f5cdbf507b8f3fbec947b9ca0043c609a34da42e76a2a5f20334fc704"
	evs[1].PrevHash = "0000000000000000000000000000000000000000000000000000000000000000"
	h := openAudit(t, evs)
	a := h.d.audit
	if !hasText(a.detail, "Select an event in the table") {
		t.Fatal("the detail pane does not say how to use it")
	}
	a.table.Select(widget.TableCellID{Row: 1, Col: 9})
	for _, want := range []string{long, "GitHub (github)", "create_issue", "Claude Desktop", "DEFRA/ffc-pay", "denied", "person", "2",
		"3m 05s", "1 github token", evs[1].Hash, evs[1].PrevHash} {
		if !hasText(a.detail, want) {
			t.Errorf("the detail pane lacks %q", want)
		}
	}
	if !hasGrid(a.detail, "Fix [redacted: github token]") {
		t.Error("the detail pane lacks the arguments as recorded")
	}
	if got := auditCell(evs[1], 8); got != "3m 05s" {
		t.Errorf("waited column %q", got)
	}
	capturePNG(t, a.window(), "audit_detail.png")
	assertMarkup(t, "audit_detail.xml", a.window().Canvas())
}

// An "Intact" result is checked again when newer events than it covered
// are shown, so it never speaks for fewer events than are on screen.
func TestAuditVerifyAgainWhenNewEventsArrive(t *testing.T) {
	h := openAudit(t, auditEvents(3))
	a := h.d.audit
	h.audit.set(func(f *fakeAudit) { f.verify = app.Integrity{OK: true, Checked: 3, LastID: 3} })
	test.Tap(a.verify)
	h.waitFor("the check", func() bool { return a.result.Text == "Intact: 3 events checked, none changed or missing." })
	h.audit.set(func(f *fakeAudit) {
		f.events = auditEvents(4)
		f.verify = app.Integrity{OK: true, Checked: 4, LastID: 4}
	})
	test.Tap(a.search)
	h.waitFor("the check to cover the new event", func() bool {
		return a.result.Text == "Intact: 4 events checked, none changed or missing."
	})
	// Nothing new: no check runs again.
	h.audit.set(func(f *fakeAudit) { f.verify = app.Integrity{OK: true, Checked: 99, LastID: 99} })
	test.Tap(a.search)
	h.settle()
	if a.result.Text != "Intact: 4 events checked, none changed or missing." {
		t.Errorf("result %q after a search with nothing new", a.result.Text)
	}
}

// The server menu names servers as the person knows them; an id shows only
// to tell apart two servers that share a name.
func TestAuditServerMenuUsesNames(t *testing.T) {
	h := openAudit(t, auditEvents(1))
	a := h.d.audit
	a.setInfo(app.AuditInfo{Servers: []app.AuditServer{
		{ID: "github", Name: "GitHub"},
		{ID: "github-work", Name: "GitHub"},
		{ID: "azure-devops", Name: "Azure DevOps (defra)"},
		{ID: "sonar"},
	}})
	want := []string{anyServer, "GitHub (github)", "GitHub (github-work)", "Azure DevOps (defra)", "sonar"}
	if diff := cmp.Diff(want, a.server.Options); diff != "" {
		t.Errorf("server menu (-want +got)\n%s", diff)
	}
	a.server.SetSelected("Azure DevOps (defra)")
	if got := a.servers[a.server.Selected]; got != "azure-devops" {
		t.Errorf("choosing Azure DevOps (defra) filters on %q, want azure-devops", got)
	}
}

// A call Countersign's restart ended reads in plain words in the table and
// the detail pane.
func TestAuditDetailPaneInterruptedCall(t *testing.T) {
	evs := auditEvents(3)
	evs[0].Edited = false
	evs[0].Kind, evs[0].Outcome, evs[0].Actor = "Result", "interrupted: Countersign stopped", "Countersign"
	evs[0].Details = "Countersign stopped after sending this call to the server and before the answer came back: the server may have run it, and the AI app got no answer."
	evs[1].Kind, evs[1].Outcome, evs[1].Actor = "Asked", "", ""
	evs[1].Details = "the arguments were too large to keep (91234 bytes): only their SHA-256 hash 5f0c1e… and their beginning are stored"
	h := openAudit(t, evs)
	a := h.d.audit
	a.table.Select(widget.TableCellID{Row: 0, Col: 6})
	for _, want := range []string{"interrupted: Countersign stopped", "the server may have run it", "Countersign"} {
		if !hasText(a.detail, want) {
			t.Errorf("the detail pane lacks %q", want)
		}
	}
	capturePNG(t, a.window(), "audit_interrupted.png")
}

// hasGrid reports whether a text grid under o holds s.
func hasGrid(o fyne.CanvasObject, s string) bool {
	switch w := o.(type) {
	case *widget.TextGrid:
		return strings.Contains(w.Text(), s)
	case *fyne.Container:
		for _, c := range w.Objects {
			if hasGrid(c, s) {
				return true
			}
		}
	}
	return false
}

// A result is not a decision: its detail does not say who "decided" it.
func TestAuditDetailOfAResultSaysWhoRecordedIt(t *testing.T) {
	evs := auditEvents(2)
	evs[0].Kind, evs[0].Outcome, evs[0].Actor = "Result", "not delivered: the AI app had gone", "Countersign"
	h := openAudit(t, evs)
	a := h.d.audit
	a.table.Select(widget.TableCellID{Row: 0, Col: 1})
	if !hasText(a.detail, "Recorded by") || hasText(a.detail, "Decided by") {
		t.Error("the detail of a result says it was decided by someone")
	}
	a.table.Select(widget.TableCellID{Row: 1, Col: 1})
	if !hasText(a.detail, "Decided by") {
		t.Error("the detail of a decision does not say who decided")
	}
}
