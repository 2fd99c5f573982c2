package ui

import (
	"context"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"
	"github.com/google/go-cmp/cmp"

	"github.com/countersign/countersign/internal/app"
)

// fakeAudit is an AuditService over fixed events.
type fakeAudit struct {
	mu      sync.Mutex
	events  []app.AuditEvent
	info    app.AuditInfo
	queries []app.AuditFilter
	verify  app.Integrity
}

func (f *fakeAudit) Info(context.Context) (app.AuditInfo, error) { return f.info, nil }

func (f *fakeAudit) Query(_ context.Context, flt app.AuditFilter, offset, limit int) (app.AuditPage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, flt)
	p := app.AuditPage{Total: len(f.events)}
	if offset < len(f.events) {
		p.Events = f.events[offset:min(offset+limit, len(f.events))]
	}
	return p, nil
}

// query returns the i-th filter queried, and how many there were.
func (f *fakeAudit) query(i int) (app.AuditFilter, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i < len(f.queries) {
		return f.queries[i], len(f.queries)
	}
	return app.AuditFilter{}, len(f.queries)
}

func (f *fakeAudit) Export(_ context.Context, flt app.AuditFilter, format app.ExportFormat, w io.Writer) error {
	_, err := io.WriteString(w, string(format)+" export\n")
	return err
}

func (f *fakeAudit) Verify(context.Context) (app.Integrity, error) { return f.verify, nil }

func auditEvents(n int) []app.AuditEvent {
	out := make([]app.AuditEvent, n)
	outcomes := []string{"approved", "denied", "timed out"}
	for i := range out {
		out[i] = app.AuditEvent{
			Time: T0.Add(-time.Duration(i) * time.Minute), CallID: strconv.Itoa(n - i), Server: "github", ServerName: "GitHub",
			Tool: "create_issue", Client: "Claude Desktop", Targets: []string{"DEFRA/ffc-pay"}, Outcome: outcomes[i%3],
			Waited: app.Duration(time.Duration(i+1) * 7 * time.Second), Edited: i == 0,
		}
		if outcomes[i%3] == "denied" {
			out[i].Reason = "use the staging project"
		}
	}
	return out
}

func openAudit(t *testing.T, events []app.AuditEvent) *harness {
	t.Helper()
	h := newHarness(t, newFixedQueue(t))
	h.audit.events = events
	h.audit.info = app.AuditInfo{Store: "Kept in memory for this session.", Servers: []string{"github", "jira"}}
	h.d.audit.show()
	h.waitFor("the first page", func() bool {
		return len(h.d.audit.page.Events) == min(len(events), auditPage) && len(h.audit.queries) > 0
	})
	return h
}

func TestAuditGolden(t *testing.T) {
	h := openAudit(t, auditEvents(3))
	assertMarkup(t, "audit.xml", h.d.audit.window().Canvas())
}

func TestAuditFilters(t *testing.T) {
	h := openAudit(t, auditEvents(3))
	a := h.d.audit
	a.server.SetSelected("jira")
	a.tool.SetText(" issue ")
	a.outcome.SetSelected("timed out")
	a.from.SetText("2026-11-01")
	a.to.SetText("2026-11-21")
	test.Tap(a.search)
	h.waitFor("the search", func() bool { _, n := h.audit.query(0); return n == 2 })
	got, _ := h.audit.query(1)
	want := app.AuditFilter{Server: "jira", Tool: "issue", Outcome: "timed out",
		From: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("filter (-want +got)\n%s", diff)
	}
	for _, bad := range []struct{ from, to, why string }{
		{"21/11/2026", "", "write dates as YYYY-MM-DD, like 2026-11-21."},
		{"2026-11-22", "2026-11-21", "the From date is after the To date."},
	} {
		a.from.SetText(bad.from)
		a.to.SetText(bad.to)
		if !a.search.Disabled() || !a.dateCheck.Visible() || a.dateCheck.Text != bad.why {
			t.Errorf("dates %q..%q: search enabled %v, says %q", bad.from, bad.to, !a.search.Disabled(), a.dateCheck.Text)
		}
	}
}

func TestAuditPaging(t *testing.T) {
	h := openAudit(t, auditEvents(450))
	a := h.d.audit
	if a.pageLabel.Text != "Showing 1–200 of 450, newest first" || !a.prev.Disabled() || a.next.Disabled() {
		t.Fatalf("first page: %q", a.pageLabel.Text)
	}
	test.Tap(a.next)
	if !a.next.Disabled() {
		t.Error("Older is enabled while a page loads")
	}
	test.Tap(a.next) // ignored: the first page has not arrived
	h.waitFor("the second page", func() bool { return a.offset == 200 })
	test.Tap(a.next)
	h.waitFor("the last page", func() bool { return a.offset == 400 })
	if a.pageLabel.Text != "Showing 401–450 of 450, newest first" || a.prev.Disabled() || !a.next.Disabled() {
		t.Fatalf("last page: %q", a.pageLabel.Text)
	}
}

type buffer struct {
	strings.Builder
	closed bool
}

func (b *buffer) Close() error { b.closed = true; return nil }

func TestAuditExportAndVerify(t *testing.T) {
	h := openAudit(t, auditEvents(3))
	a := h.d.audit
	var out buffer
	var asked string
	a.save = func(name string, done func(io.WriteCloser, error)) { asked = name; done(&out, nil) }
	test.Tap(a.csv)
	h.waitFor("the export", func() bool { return strings.HasPrefix(a.result.Text, "Exported") })
	if asked != "countersign-audit.csv" || out.String() != "csv export\n" || !out.closed {
		t.Errorf("asked %q, wrote %q, closed %v", asked, out.String(), out.closed)
	}
	if a.result.Text != "Exported 3 events as CSV." {
		t.Errorf("result %q", a.result.Text)
	}

	h.audit.verify = app.Integrity{OK: true, Checked: 3}
	test.Tap(a.verify)
	h.waitFor("the check", func() bool { return strings.HasPrefix(a.result.Text, "Intact") })
	h.audit.verify = app.Integrity{Checked: 2, Problem: "event 3 was changed after it was written."}
	test.Tap(a.verify)
	h.waitFor("the check", func() bool { return strings.HasPrefix(a.result.Text, "Problem") })
	if a.result.Text != "Problem found after checking 2 events: event 3 was changed after it was written." {
		t.Errorf("result %q", a.result.Text)
	}

	a.setInfo(app.AuditInfo{VerifyUnavailable: "Nothing is stored yet."})
	if !a.verify.Disabled() || a.result.Text != "Nothing is stored yet." {
		t.Errorf("verify enabled %v, result %q", !a.verify.Disabled(), a.result.Text)
	}
}
