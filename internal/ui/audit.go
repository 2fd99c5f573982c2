package ui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/countersign/countersign/internal/app"
	"github.com/countersign/countersign/internal/ui/portal"
)

// auditPage is how many events the audit table shows at once.
const auditPage = 100

// auditColumns are the audit table's columns and their widths.
var auditColumns = []struct {
	name  string
	width float32
}{
	{"Time", 150}, {"Event", 135}, {"Server", 95}, {"Tool", 140}, {"Asked by", 120},
	{"Target", 125}, {"Outcome", 145}, {"By", 90}, {"Waited", 70}, {"Details", 215},
}

const (
	anyServer  = "All servers"
	anyTool    = "All tools"
	anyOutcome = "Any outcome"
	dateLayout = "2006-01-02"
)

// auditWindow is the audit viewer: the stored audit log as a filtered
// table, paged by "Newer" and "Older", with export and an integrity check.
// It shows decisions unless the person picks another set of events.
type auditWindow struct {
	d   *Desktop
	win fyne.Window

	content fyne.CanvasObject
	servers map[string]string // server filter label → id

	// The page shown: its filter, the "before" key of each page from the
	// newest to this one (0 for the newest), and its events.
	filter  app.AuditFilter
	cursors []int64
	page    app.AuditPage
	seq     int // numbers each load, so a stale answer is dropped

	exporting   context.CancelFunc // cancels the running export; nil when none
	cancelAsked bool               // the person cancelled the running export
	checking    bool               // an integrity check runs

	events    *widget.Select
	server    *widget.Select
	tool      *widget.Select
	outcome   *widget.Select
	text      *widget.Entry
	from, to  *widget.Entry
	dateCheck *widget.Label
	search    *widget.Button
	table     *widget.Table
	pageLabel *widget.Label
	newer     *widget.Button
	older     *widget.Button
	csv       *widget.Button
	jsonl     *widget.Button
	cancel    *widget.Button
	verify    *widget.Button
	result    *widget.Label
	store     *widget.Label
	detail    *fyne.Container // every field of the selected event
	selected  int64           // the selected event's id; 0 when none

	// verified is the newest event the last integrity check covered, while
	// its "Intact" result is shown; 0 otherwise. A page showing a newer
	// event checks again, so the result covers what is on screen.
	verified int64

	// save asks where to write an export (a file dialog); tests replace it.
	save func(name string, done func(io.WriteCloser, error))
}

func newAuditWindow(d *Desktop) *auditWindow {
	a := &auditWindow{d: d, cursors: []int64{0}}
	a.save = a.saveDialog
	return a // the widgets are built when the viewer first opens
}

func (a *auditWindow) build() {
	var sets []string
	for _, s := range app.EventSets() {
		sets = append(sets, s.String())
	}
	a.events = widget.NewSelect(sets, nil)
	a.events.SetSelected(app.Decisions.String())
	a.server = widget.NewSelect([]string{anyServer}, nil)
	a.server.SetSelected(anyServer)
	a.tool = widget.NewSelect([]string{anyTool}, nil)
	a.tool.SetSelected(anyTool)
	a.outcome = widget.NewSelect([]string{anyOutcome}, nil)
	a.outcome.SetSelected(anyOutcome)
	for _, s := range []*widget.Select{a.events, a.server, a.tool, a.outcome} {
		s.OnChanged = func(string) { a.searchIfValid() }
	}
	a.text = widget.NewEntry()
	a.text.SetPlaceHolder("Words in tool, target or reason")
	a.from = widget.NewEntry()
	a.from.SetPlaceHolder("From YYYY-MM-DD")
	a.to = widget.NewEntry()
	a.to.SetPlaceHolder("To YYYY-MM-DD")
	a.dateCheck = wrapped("")
	a.dateCheck.Importance = widget.DangerImportance
	a.dateCheck.Hide()
	a.search = widget.NewButtonWithIcon("Search", theme.SearchIcon(), a.searchIfValid)
	a.from.OnChanged = func(string) { a.checkDates() }
	a.to.OnChanged = func(string) { a.checkDates() }
	for _, e := range []*widget.Entry{a.text, a.from, a.to} {
		e.OnSubmitted = func(string) { a.searchIfValid() }
	}
	filters := container.NewVBox(
		container.NewGridWithColumns(4, a.events, a.server, a.tool, a.outcome),
		container.NewBorder(nil, nil, nil, a.search, container.NewGridWithColumns(3, a.text, a.from, a.to)),
		a.dateCheck,
	)

	a.table = widget.NewTable(
		func() (int, int) { return len(a.page.Events), len(auditColumns) },
		func() fyne.CanvasObject {
			l := widget.NewLabel("")
			l.Truncation = fyne.TextTruncateEllipsis
			return l
		},
		func(id widget.TableCellID, o fyne.CanvasObject) {
			if id.Row < len(a.page.Events) {
				o.(*widget.Label).SetText(auditCell(a.page.Events[id.Row], id.Col))
			}
		})
	a.table.OnSelected = func(id widget.TableCellID) {
		if id.Row >= 0 && id.Row < len(a.page.Events) {
			a.showDetail(a.page.Events[id.Row])
		}
	}
	a.table.ShowHeaderRow = true
	a.table.CreateHeader = func() fyne.CanvasObject { return heading("") }
	a.table.UpdateHeader = func(id widget.TableCellID, o fyne.CanvasObject) {
		if id.Col >= 0 && id.Col < len(auditColumns) {
			o.(*widget.Label).SetText(auditColumns[id.Col].name)
		}
	}
	for i, c := range auditColumns {
		a.table.SetColumnWidth(i, c.width)
	}

	a.pageLabel = widget.NewLabel("")
	a.newer = widget.NewButtonWithIcon("Newer", theme.NavigateBackIcon(), a.showNewer)
	a.older = widget.NewButtonWithIcon("Older", theme.NavigateNextIcon(), a.showOlder)
	a.csv = widget.NewButtonWithIcon("Export CSV…", theme.DocumentSaveIcon(), func() { a.export(app.ExportCSV) })
	a.jsonl = widget.NewButtonWithIcon("Export JSON Lines…", theme.DocumentSaveIcon(), func() { a.export(app.ExportJSONL) })
	a.cancel = widget.NewButtonWithIcon("Cancel export", theme.CancelIcon(), a.cancelExport)
	a.cancel.Hide()
	a.verify = widget.NewButtonWithIcon("Verify integrity", theme.ConfirmIcon(), a.check)
	a.verify.Disable() // until the log is open
	a.result = wrapped("")
	a.store = wrapped("")
	a.store.Importance = widget.LowImportance
	bottom := container.NewVBox(
		container.NewHBox(a.newer, a.older, a.pageLabel),
		widget.NewSeparator(),
		container.NewHBox(a.csv, a.jsonl, a.cancel, a.verify),
		a.result,
		a.store,
	)
	a.detail = container.NewVBox()
	a.showDetail(app.AuditEvent{})
	split := container.NewHSplit(a.table, container.NewVScroll(a.detail))
	split.Offset = 0.66
	a.content = container.NewBorder(filters, bottom, nil, nil, split)
	a.setPage(app.AuditFilter{}, []int64{0}, app.AuditPage{})
	a.pageLabel.SetText("Opening the audit log…")
}

// showDetail shows every field of an event, whole, beside the table; the
// zero event says how to pick one.
func (a *auditWindow) showDetail(e app.AuditEvent) {
	a.selected = e.ID
	if e.ID == 0 {
		a.detail.Objects = []fyne.CanvasObject{heading("Event details"), lowText("Select an event in the table to read all of it here.")}
		a.detail.Refresh()
		return
	}
	objs := []fyne.CanvasObject{heading(oneLine(e.Kind, 60))}
	if strings.TrimSpace(e.Details) != "" {
		d := widget.NewLabel(visible(e.Details))
		d.Wrapping = fyne.TextWrapWord
		d.Selectable = true
		objs = append(objs, d)
	}
	form := container.New(layout.NewFormLayout())
	field := func(name, value string) {
		if strings.TrimSpace(value) == "" {
			return
		}
		l := widget.NewLabel(visible(value))
		l.Wrapping = fyne.TextWrapWord
		l.Selectable = true
		n := widget.NewLabel(name)
		n.Importance = widget.LowImportance
		form.Add(n)
		form.Add(l)
	}
	server := e.ServerName
	if e.Server != "" && e.Server != e.ServerName {
		if server == "" {
			server = e.Server
		} else {
			server += " (" + e.Server + ")"
		}
	}
	outcome := e.Outcome
	if e.Edited {
		outcome += " (with arguments you edited)"
	}
	field("When", e.Time.Local().Format("2 Jan 2006, 15:04:05"))
	field("Server", server)
	field("Tool", e.Tool)
	field("Asked by", e.Client)
	field("Touches", e.Target)
	field("Outcome", outcome)
	// Only a decision is decided by someone; other events (a result, a
	// sign-in) are recorded by whoever the log names.
	if e.Kind == "Decided" || e.Kind == "Blocked by policy" {
		field("Decided by", e.Actor)
	} else {
		field("Recorded by", e.Actor)
	}
	field("Waited", waitedText(e.Waited))
	field("Call", e.CallID)
	field("Secrets removed", e.Redactions)
	field("Event", fmt.Sprint(e.ID))
	field("Hash", e.Hash)
	field("Previous hash", e.PrevHash)
	objs = append(objs, form)
	// Arguments as recorded (secrets already removed), whole, in a
	// monospace block the person can select and copy.
	block := func(title, text string) {
		if text == "" {
			return
		}
		g := widget.NewTextGrid()
		g.SetText(visible(text))
		objs = append(objs, lowText(title), g)
	}
	block("Arguments, as the AI app sent them (secrets removed)", e.Arguments)
	block("Arguments you approved after editing", e.EditedArguments)
	a.detail.Objects = objs
	a.detail.Refresh()
}

// waitedText is how long a call waited for its decision, short: "45s",
// "3m 05s", "2h 10m"; empty for events that are not a decision.
func waitedText(d time.Duration) string {
	switch {
	case d <= 0:
		return ""
	case d < time.Second:
		return "<1s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	}
	return fmt.Sprintf("%dh %02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

// auditCell is the text of one table cell.
func auditCell(e app.AuditEvent, col int) string {
	switch col {
	case 0:
		return e.Time.Local().Format("2006-01-02 15:04:05")
	case 1:
		return oneLine(e.Kind, 40)
	case 2:
		if e.ServerName != "" {
			return oneLine(e.ServerName, 40)
		}
		return oneLine(e.Server, 40)
	case 3:
		return oneLine(e.Tool, 60)
	case 4:
		return oneLine(e.Client, 40)
	case 5:
		return oneLine(e.Target, 80)
	case 6:
		if e.Edited {
			return oneLine(e.Outcome, 30) + " (edited)"
		}
		return oneLine(e.Outcome, 30)
	case 7:
		return oneLine(e.Actor, 20)
	case 8:
		return waitedText(e.Waited)
	case 9:
		return oneLine(e.Details, 200)
	}
	return ""
}

func (a *auditWindow) window() fyne.Window {
	if a.win == nil {
		a.build()
		a.win = a.d.newWindow("Countersign: audit", fyne.NewSize(1260, 700))
		a.win.SetContent(a.content)
	}
	return a.win
}

// show opens the viewer and loads the newest events with the filters set.
func (a *auditWindow) show() {
	w := a.window()
	w.Show()
	w.RequestFocus()
	svc := a.d.o.Audit
	a.d.background(func(ctx context.Context) func() {
		info, err := svc.Info(ctx)
		return func() {
			if err != nil {
				a.pageLabel.SetText("")
				a.fail("Could not open the audit log: " + err.Error())
				return
			}
			a.setInfo(info)
			a.searchIfValid()
		}
	})
}

// setInfo fills the filter menus, keeping what is chosen.
func (a *auditWindow) setInfo(info app.AuditInfo) {
	a.servers = map[string]string{}
	servers := []string{anyServer}
	named := map[string]int{} // how many servers go by each name
	for _, s := range info.Servers {
		named[s.Name]++
	}
	for _, s := range info.Servers {
		// The name the person knows; the id only to tell apart two
		// servers that share a name (or for one that has none).
		label := s.Name
		if s.Name == "" {
			label = s.ID
		} else if named[s.Name] > 1 && s.Name != s.ID {
			label = s.Name + " (" + s.ID + ")"
		}
		a.servers[label] = s.ID
		servers = append(servers, label)
	}
	setOptions(a.server, servers)
	setOptions(a.tool, append([]string{anyTool}, info.Tools...))
	setOptions(a.outcome, append([]string{anyOutcome}, info.Outcomes...))
	a.store.SetText(info.Store)
	if !a.checking {
		a.verify.Enable()
	}
}

// setOptions replaces a menu's options; a choice no longer offered falls
// back to the first option, without running a search.
func setOptions(s *widget.Select, options []string) {
	s.Options = options
	found := false
	for _, o := range options {
		found = found || o == s.Selected
	}
	if !found {
		changed := s.OnChanged
		s.OnChanged = nil
		s.SetSelected(options[0])
		s.OnChanged = changed
	}
	s.Refresh()
}

// parseDay reads a YYYY-MM-DD date in local time; empty is the zero time.
func parseDay(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.ParseInLocation(dateLayout, s, time.Local)
	if err != nil {
		return time.Time{}, errors.New("write dates as YYYY-MM-DD, like 2026-11-21")
	}
	return t, nil
}

// filters reads the filter widgets.
func (a *auditWindow) filters() (app.AuditFilter, error) {
	var f app.AuditFilter
	for _, s := range app.EventSets() {
		if s.String() == a.events.Selected {
			f.Events = s
		}
	}
	f.Server = a.servers[a.server.Selected]
	if t := a.tool.Selected; t != anyTool {
		f.Tool = t
	}
	if o := a.outcome.Selected; o != anyOutcome {
		f.Outcome = o
	}
	f.Text = strings.TrimSpace(a.text.Text)
	from, err := parseDay(a.from.Text)
	if err != nil {
		return f, err
	}
	to, err := parseDay(a.to.Text)
	if err != nil {
		return f, err
	}
	f.From = from
	if !to.IsZero() {
		f.To = to.AddDate(0, 0, 1) // the whole of that day
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return f, errors.New("the From date is after the To date")
	}
	return f, nil
}

// checkDates says what is wrong with the dates as they are typed, and
// holds the search until they are right.
func (a *auditWindow) checkDates() {
	_, err := a.filters()
	was := a.dateCheck.Visible()
	if err != nil {
		a.dateCheck.SetText(capitalise(err.Error()) + ".")
		a.dateCheck.Show()
		a.search.Disable()
	} else {
		a.dateCheck.Hide()
		a.search.Enable()
	}
	if a.dateCheck.Visible() != was {
		a.content.Refresh() // lay the filters out again, with or without the message
	}
}

// searchIfValid shows the newest events the filters select, unless the
// dates are wrong (checkDates says why).
func (a *auditWindow) searchIfValid() {
	f, err := a.filters()
	if err != nil {
		a.checkDates()
		return
	}
	a.load(f, []int64{0})
}

// showOlder shows the page after this one.
func (a *auditWindow) showOlder() {
	if !a.page.More {
		return
	}
	a.load(a.filter, append(a.cursors[:len(a.cursors):len(a.cursors)], a.page.Next))
}

// showNewer shows the page before this one.
func (a *auditWindow) showNewer() {
	if len(a.cursors) < 2 {
		return
	}
	a.load(a.filter, a.cursors[:len(a.cursors)-1])
}

// load queries the page cursors ends at, off the UI goroutine. Paging waits
// until it arrives; a later load supersedes it.
func (a *auditWindow) load(f app.AuditFilter, cursors []int64) {
	a.seq++
	seq := a.seq
	a.newer.Disable()
	a.older.Disable()
	a.pageLabel.SetText("Loading…")
	before := cursors[len(cursors)-1]
	svc := a.d.o.Audit
	a.d.background(func(ctx context.Context) func() {
		page, err := svc.Query(ctx, f, before, auditPage)
		return func() {
			if seq != a.seq {
				return
			}
			if err != nil {
				a.setPage(a.filter, a.cursors, a.page)
				a.fail("Search failed: " + err.Error())
				return
			}
			a.setPage(f, cursors, page)
		}
	})
}

// setPage shows a page and where it is, and enables what can be done from
// there.
func (a *auditWindow) setPage(f app.AuditFilter, cursors []int64, p app.AuditPage) {
	a.filter, a.cursors, a.page = f, cursors, p
	a.table.UnselectAll()
	a.table.Refresh()
	a.table.ScrollToTop()
	a.showDetail(app.AuditEvent{})
	if a.verified > 0 && len(p.Events) > 0 && p.Events[0].ID > a.verified && !a.checking {
		a.check() // newer events than the check covered: check again
	}
	a.pageLabel.SetText(pagePosition(len(cursors)-1, len(p.Events), p.More))
	if len(cursors) > 1 {
		a.newer.Enable()
	} else {
		a.newer.Disable()
	}
	if p.More {
		a.older.Enable()
	} else {
		a.older.Disable()
	}
	a.syncExport()
}

// pagePosition says which events a page shows, and so why Newer or Older
// cannot be used.
func pagePosition(index, n int, more bool) string {
	if n == 0 {
		if index == 0 {
			return "No events match these filters."
		}
		return "No older events match."
	}
	first := index*auditPage + 1
	s := fmt.Sprintf("Events %d–%d", first, first+n-1)
	if index == 0 {
		s += " (the newest)"
	}
	if more {
		return s + " · older events available"
	}
	return s + " · no older events"
}

// fail shows a failure in plain words.
func (a *auditWindow) fail(msg string) {
	a.result.Importance = widget.DangerImportance
	a.result.SetText(msg)
}

// syncExport enables export when something matches and no export runs.
func (a *auditWindow) syncExport() {
	if a.exporting != nil {
		a.csv.Disable()
		a.jsonl.Disable()
		a.cancel.Show()
		return
	}
	a.cancel.Hide()
	if len(a.page.Events) == 0 {
		a.csv.Disable()
		a.jsonl.Disable()
	} else {
		a.csv.Enable()
		a.jsonl.Enable()
	}
}

// export writes every event the shown filters select, oldest first, to a
// file the person chooses.
func (a *auditWindow) export(format app.ExportFormat) {
	if a.exporting != nil {
		return
	}
	f := a.filter
	svc := a.d.o.Audit
	name := fmt.Sprintf("countersign-audit-%s.%s", a.d.o.Now().Format(dateLayout), format)
	a.save(name, func(w io.WriteCloser, err error) {
		if err != nil {
			a.fail("Export failed: the file could not be opened: " + err.Error())
			return
		}
		if w == nil {
			return // the person cancelled
		}
		where := name
		if u, ok := w.(interface{ URI() fyne.URI }); ok && u.URI() != nil {
			where = u.URI().Path()
		} else if f, ok := w.(interface{ Name() string }); ok {
			where = f.Name()
		}
		ctx, cancel := context.WithCancel(a.d.bg)
		a.exporting, a.cancelAsked = cancel, false
		a.syncExport()
		a.result.Importance = widget.MediumImportance
		a.result.SetText("Exporting to " + where + "…")
		a.d.background(func(context.Context) func() {
			n, err := svc.Export(ctx, f, format, w)
			if cerr := w.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("closing the file: %w", cerr)
			}
			cancel()
			return func() {
				a.exporting = nil
				a.syncExport()
				switch {
				case err != nil && a.cancelAsked:
					a.fail("Export cancelled: " + where + " is incomplete.")
				case err != nil:
					a.fail("Export failed: " + err.Error() + ". " + where + " is incomplete.")
				default:
					a.result.Importance = widget.SuccessImportance
					a.result.SetText(fmt.Sprintf("Exported %s as %s to %s.", events(n), strings.ToUpper(string(format)), where))
				}
			}
		})
	})
}

// cancelExport stops the running export.
func (a *auditWindow) cancelExport() {
	if a.exporting != nil {
		a.cancelAsked = true
		a.exporting()
	}
}

func capitalise(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// events counts events in words.
func events(n int64) string {
	if n == 1 {
		return "1 event"
	}
	return fmt.Sprintf("%d events", n)
}

// saveDialog asks where to save with the desktop's own file chooser, and
// with Fyne's dialog where the desktop has none.
func (a *auditWindow) saveDialog(name string, done func(io.WriteCloser, error)) {
	go func() {
		path, err := portal.SaveFile(a.d.bg, "Export the audit log", name)
		fyne.Do(func() {
			switch {
			case err != nil:
				if !errors.Is(err, portal.ErrUnavailable) {
					a.d.log.Warn("the desktop's file chooser failed; using Countersign's own", "err", err)
				}
				a.fyneSaveDialog(name, done)
			case path == "":
				done(nil, nil) // the person cancelled
			default:
				// An export holds what the person's AI apps did: only they
				// may read it.
				f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
				if err != nil {
					done(nil, err)
					return
				}
				done(f, nil)
			}
		})
	}()
}

// fyneSaveDialog asks where to save with Fyne's own file dialog.
func (a *auditWindow) fyneSaveDialog(name string, done func(io.WriteCloser, error)) {
	d := dialog.NewFileSave(func(w fyne.URIWriteCloser, err error) {
		if w == nil {
			done(nil, err)
			return
		}
		done(w, err)
	}, a.window())
	d.SetFileName(name)
	d.Show()
}

// check verifies the audit log's integrity and says the result plainly.
func (a *auditWindow) check() {
	a.checking, a.verified = true, 0
	a.verify.Disable()
	a.result.Importance = widget.MediumImportance
	a.result.SetText("Checking every event in the audit log…")
	svc := a.d.o.Audit
	a.d.background(func(ctx context.Context) func() {
		res, err := svc.Verify(ctx)
		return func() {
			a.checking = false
			a.verify.Enable()
			switch {
			case err != nil:
				a.fail("Could not check the log: " + err.Error())
			case res.OK:
				a.verified = max(res.LastID, 1)
				a.result.Importance = widget.SuccessImportance
				a.result.SetText(strings.TrimSpace(fmt.Sprintf("Intact: %s checked, none changed or missing. %s %s", events(res.Checked), res.Pruned, res.Anchor)))
			default:
				a.fail(strings.TrimSpace(fmt.Sprintf("Problem found: %s %s before it verified. %s %s", res.Problem, capitalise(events(res.Checked)), res.Pruned, res.Anchor)))
			}
		}
	})
}
