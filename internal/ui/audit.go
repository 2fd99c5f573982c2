package ui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/countersign/countersign/internal/app"
	"github.com/countersign/countersign/internal/gate"
)

// auditPage is how many events the audit table shows at once.
const auditPage = 200

// auditColumns are the audit table's columns and their widths.
var auditColumns = []struct {
	name  string
	width float32
}{
	{"Time", 150}, {"Server", 110}, {"Tool", 160}, {"Asked by", 130}, {"Target", 150},
	{"Decision", 100}, {"Reason", 210}, {"Waited", 70},
}

const (
	anyServer  = "All servers"
	anyOutcome = "Any decision"
	dateLayout = "2006-01-02"
)

// auditWindow is the audit viewer: a filtered, paged table of decided calls,
// export, and an integrity check.
type auditWindow struct {
	d   *Desktop
	win fyne.Window

	content fyne.CanvasObject
	info    app.AuditInfo
	filter  app.AuditFilter
	offset  int
	page    app.AuditPage

	server    *widget.Select
	tool      *widget.Entry
	outcome   *widget.Select
	from, to  *widget.Entry
	dateCheck *widget.Label
	search    *widget.Button
	table     *widget.Table
	pageLabel *widget.Label
	prev      *widget.Button
	next      *widget.Button
	csv       *widget.Button
	jsonl     *widget.Button
	verify    *widget.Button
	result    *widget.Label
	store     *widget.Label

	// save asks where to write an export (a file dialog); tests replace it.
	save func(name string, done func(io.WriteCloser, error))
}

func newAuditWindow(d *Desktop) *auditWindow {
	a := &auditWindow{d: d}
	a.save = a.saveDialog
	a.build()
	return a
}

func outcomeNames() []string {
	var out []string
	for o := gate.OutcomeApproved; o <= gate.OutcomePaused; o++ {
		out = append(out, o.String())
	}
	return out
}

func (a *auditWindow) build() {
	a.server = widget.NewSelect([]string{anyServer}, nil)
	a.server.SetSelected(anyServer)
	a.tool = widget.NewEntry()
	a.tool.SetPlaceHolder("Tool name contains…")
	a.outcome = widget.NewSelect(append([]string{anyOutcome}, outcomeNames()...), nil)
	a.outcome.SetSelected(anyOutcome)
	a.from = widget.NewEntry()
	a.from.SetPlaceHolder("From YYYY-MM-DD")
	a.to = widget.NewEntry()
	a.to.SetPlaceHolder("To YYYY-MM-DD")
	a.dateCheck = wrapped("")
	a.dateCheck.Importance = widget.DangerImportance
	a.dateCheck.Hide()
	a.search = widget.NewButtonWithIcon("Search", theme.SearchIcon(), func() { a.run(0) })
	a.from.OnChanged = func(string) { a.checkDates() }
	a.to.OnChanged = func(string) { a.checkDates() }
	for _, e := range []*widget.Entry{a.tool, a.from, a.to} {
		e.OnSubmitted = func(string) {
			if !a.search.Disabled() {
				a.run(0)
			}
		}
	}
	filters := container.NewVBox(
		container.NewGridWithColumns(3, a.server, a.tool, a.outcome),
		container.NewBorder(nil, nil, nil, a.search, container.NewGridWithColumns(2, a.from, a.to)),
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
	a.prev = widget.NewButtonWithIcon("Newer", theme.NavigateBackIcon(), func() { a.run(max(a.offset-auditPage, 0)) })
	a.next = widget.NewButtonWithIcon("Older", theme.NavigateNextIcon(), func() { a.run(a.offset + auditPage) })
	a.csv = widget.NewButtonWithIcon("Export CSV…", theme.DocumentSaveIcon(), func() { a.export(app.ExportCSV) })
	a.jsonl = widget.NewButtonWithIcon("Export JSON Lines…", theme.DocumentSaveIcon(), func() { a.export(app.ExportJSONL) })
	a.verify = widget.NewButtonWithIcon("Verify integrity", theme.ConfirmIcon(), a.check)
	a.result = wrapped("")
	a.store = wrapped("")
	a.store.Importance = widget.LowImportance
	bottom := container.NewVBox(
		container.NewHBox(a.prev, a.next, a.pageLabel),
		widget.NewSeparator(),
		container.NewHBox(a.csv, a.jsonl, a.verify),
		a.result,
		a.store,
	)
	a.content = container.NewBorder(filters, bottom, nil, nil, a.table)
	a.setPage(0, app.AuditPage{})
}

// auditCell is the text of one table cell.
func auditCell(e app.AuditEvent, col int) string {
	switch col {
	case 0:
		return e.Time.Local().Format("2006-01-02 15:04:05")
	case 1:
		if e.ServerName != "" {
			return oneLine(e.ServerName, 40)
		}
		return oneLine(e.Server, 40)
	case 2:
		return oneLine(e.Tool, 60)
	case 3:
		return oneLine(e.Client, 40)
	case 4:
		return oneLine(strings.Join(e.Targets, ", "), 80)
	case 5:
		if e.Edited {
			return oneLine(e.Outcome, 20) + " (edited)"
		}
		return oneLine(e.Outcome, 20)
	case 6:
		return oneLine(e.Reason, 200)
	case 7:
		return age(time.Duration(e.Waited))
	}
	return ""
}

func (a *auditWindow) window() fyne.Window {
	if a.win == nil {
		a.win = a.d.newWindow("Countersign: audit", fyne.NewSize(1100, 640))
		a.win.SetContent(a.content)
	}
	return a.win
}

// show opens the viewer on the newest events.
func (a *auditWindow) show() {
	w := a.window()
	w.Show()
	w.RequestFocus()
	svc := a.d.o.Audit
	a.d.background(func(ctx context.Context) func() {
		info, err := svc.Info(ctx)
		return func() {
			if err != nil {
				a.result.Importance = widget.DangerImportance
				a.result.SetText("Could not open the audit log: " + err.Error())
				return
			}
			a.setInfo(info)
			a.run(0)
		}
	})
}

func (a *auditWindow) setInfo(info app.AuditInfo) {
	a.info = info
	a.server.Options = append([]string{anyServer}, info.Servers...)
	a.server.Refresh()
	a.store.SetText(info.Store)
	if info.VerifyUnavailable != "" {
		a.verify.Disable()
		a.result.Importance = widget.LowImportance
		a.result.SetText(info.VerifyUnavailable)
	} else {
		a.verify.Enable()
	}
}

// parseDay reads a YYYY-MM-DD date in local time; empty is the zero time.
func parseDay(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.ParseInLocation(dateLayout, s, time.Local)
	if err != nil {
		return time.Time{}, fmt.Errorf("write dates as YYYY-MM-DD, like 2026-11-21")
	}
	return t, nil
}

// filters reads the filter widgets.
func (a *auditWindow) filters() (app.AuditFilter, error) {
	var f app.AuditFilter
	if s := a.server.Selected; s != anyServer {
		f.Server = s
	}
	f.Tool = strings.TrimSpace(a.tool.Text)
	if o := a.outcome.Selected; o != anyOutcome {
		f.Outcome = o
	}
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

func (a *auditWindow) checkDates() {
	if _, err := a.filters(); err != nil {
		a.dateCheck.SetText(err.Error() + ".")
		a.dateCheck.Show()
		a.search.Disable()
		return
	}
	a.dateCheck.Hide()
	a.search.Enable()
}

// run queries a page of events with the current filters.
func (a *auditWindow) run(offset int) {
	f, err := a.filters()
	if err != nil {
		return
	}
	a.filter = f
	a.prev.Disable()
	a.next.Disable()
	svc := a.d.o.Audit
	a.d.background(func(ctx context.Context) func() {
		page, err := svc.Query(ctx, f, offset, auditPage)
		return func() {
			if err != nil {
				a.setPage(a.offset, a.page)
				a.result.Importance = widget.DangerImportance
				a.result.SetText("Search failed: " + err.Error())
				return
			}
			a.setPage(offset, page)
		}
	})
}

func (a *auditWindow) setPage(offset int, p app.AuditPage) {
	a.offset, a.page = offset, p
	a.table.Refresh()
	a.table.ScrollToTop()
	if p.Total == 0 {
		a.pageLabel.SetText("No events match.")
	} else {
		a.pageLabel.SetText(fmt.Sprintf("Showing %d–%d of %d, newest first", offset+1, offset+len(p.Events), p.Total))
	}
	if offset > 0 {
		a.prev.Enable()
	} else {
		a.prev.Disable()
	}
	if offset+len(p.Events) < p.Total {
		a.next.Enable()
	} else {
		a.next.Disable()
	}
	if p.Total == 0 {
		a.csv.Disable()
		a.jsonl.Disable()
	} else {
		a.csv.Enable()
		a.jsonl.Enable()
	}
}

// export writes every event matching the filters to a file the person
// chooses.
func (a *auditWindow) export(format app.ExportFormat) {
	f := a.filter
	svc := a.d.o.Audit
	a.save("countersign-audit."+string(format), func(w io.WriteCloser, err error) {
		if err != nil {
			a.result.Importance = widget.DangerImportance
			a.result.SetText("Export failed: " + err.Error())
			return
		}
		if w == nil {
			return // cancelled
		}
		a.result.Importance = widget.MediumImportance
		a.result.SetText("Exporting…")
		a.d.background(func(ctx context.Context) func() {
			err := svc.Export(ctx, f, format, w)
			if cerr := w.Close(); err == nil {
				err = cerr
			}
			return func() {
				if err != nil {
					a.result.Importance = widget.DangerImportance
					a.result.SetText("Export failed: " + err.Error())
					return
				}
				a.result.Importance = widget.SuccessImportance
				a.result.SetText(fmt.Sprintf("Exported %d events as %s.", a.page.Total, strings.ToUpper(string(format))))
			}
		})
	})
}

func (a *auditWindow) saveDialog(name string, done func(io.WriteCloser, error)) {
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
	a.verify.Disable()
	a.result.Importance = widget.MediumImportance
	a.result.SetText("Checking…")
	svc := a.d.o.Audit
	a.d.background(func(ctx context.Context) func() {
		res, err := svc.Verify(ctx)
		return func() {
			a.verify.Enable()
			switch {
			case err != nil:
				a.result.Importance = widget.DangerImportance
				a.result.SetText("Could not check the log: " + err.Error())
			case res.OK:
				a.result.Importance = widget.SuccessImportance
				a.result.SetText(fmt.Sprintf("Intact: %d events checked, none changed or missing.", res.Checked))
			default:
				a.result.Importance = widget.DangerImportance
				a.result.SetText(fmt.Sprintf("Problem found after checking %d events: %s", res.Checked, res.Problem))
			}
		}
	})
}
