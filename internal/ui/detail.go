package ui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/countersign/countersign/internal/gate"
)

// callRow is one row of the review list: a tick box, the summary, who asks
// for what, and the time left.
type callRow struct {
	widget.BaseWidget
	r        *review
	id       string
	received time.Time
	deadline time.Time
	host     hostWait
	tick     *widget.Check
	warn     *widget.Icon
	summary  *widget.Label
	who      *widget.Label
	when     *widget.Label
}

func newCallRow(r *review) *callRow {
	row := &callRow{r: r}
	row.tick = widget.NewCheck("", nil)
	row.warn = widget.NewIcon(theme.NewWarningThemedResource(theme.WarningIcon()))
	// Clipping, not an ellipsis: Fyne shapes the whole text afresh for an
	// ellipsis on every update, which costs milliseconds a row. The texts
	// are already cut short with "…" by oneLine.
	row.summary = widget.NewLabel("")
	row.summary.TextStyle.Bold = true
	row.summary.Truncation = fyne.TextTruncateClip
	row.who = widget.NewLabel("")
	row.who.Truncation = fyne.TextTruncateClip
	row.who.SizeName = theme.SizeNameCaptionText
	row.when = widget.NewLabel("")
	row.when.SizeName = theme.SizeNameCaptionText
	row.ExtendBaseWidget(row)
	r.rows = append(r.rows, row)
	return row
}

// CreateRenderer lays the row out.
func (row *callRow) CreateRenderer() fyne.WidgetRenderer {
	lines := container.New(layout.NewCustomPaddedVBoxLayout(-theme.Padding()*2), row.summary, row.who, row.when)
	return widget.NewSimpleRenderer(container.NewBorder(nil, nil, row.tick, row.warn, lines))
}

// set shows call c in the row (rows are reused as the list scrolls).
func (row *callRow) set(c gate.Call) {
	row.id = c.ID
	r := row.r
	row.tick.OnChanged = nil
	row.tick.SetChecked(r.checked[c.ID])
	id := c.ID
	row.tick.OnChanged = func(on bool) { r.setTicked(id, on) }
	if icon := warningIcon(c.Warnings); icon != nil {
		row.warn.SetResource(icon)
		row.warn.Show()
	} else {
		row.warn.Hide()
	}
	setText(row.summary, Summary(c))
	who := serverName(c) + " · " + oneLine(c.Tool, 60)
	if len(c.Targets) > 0 {
		who += " · " + targetText(c)
	}
	setText(row.who, who+" · asked by "+clientName(c))
	row.received, row.deadline, row.host = c.Received, c.Deadline, hostWaitOf(c)
	row.tickTime(r.d.o.Now())
}

// hostWait is what a call's row and detail say about the AI app's own
// time limit.
type hostWait struct {
	gone     bool      // the AI app stopped waiting (gate.Call.HostGone)
	deadline time.Time // when it stops waiting; zero when it waits as long as Countersign
	window   time.Duration
}

func hostWaitOf(c gate.Call) hostWait {
	return hostWait{gone: c.HostGone, deadline: c.HostDeadline, window: c.RetryWindow}
}

// rowText is the row's word on the AI app's wait, with a trailing " · ",
// or "" when there is nothing to say.
func (h hostWait) rowText(now time.Time) string {
	switch {
	case h.gone:
		return "AI app stopped waiting · "
	case !h.deadline.IsZero() && h.deadline.After(now):
		return "AI app waits " + countdown(h.deadline.Sub(now)) + " more · "
	}
	return ""
}

// goneText tells the person what approving a call the AI app stopped
// waiting for does.
func (h hostWait) goneText() string {
	within := ""
	if h.window > 0 {
		within = " (if it asks within " + humanWindow(h.window) + ")"
	}
	return "The AI app stopped waiting for an answer. If you approve, the call runs when the AI app asks for it again with the same details" + within + ". Deny it if you don't want it to run."
}

// humanWindow says a duration in whole minutes, or seconds when shorter.
func humanWindow(d time.Duration) string {
	if d >= time.Minute && d%time.Minute == 0 {
		if d == time.Minute {
			return "1 minute"
		}
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
	return fmt.Sprintf("%d seconds", int(d.Round(time.Second)/time.Second))
}

// tickTime shows the row's age and time left at now.
func (row *callRow) tickTime(now time.Time) {
	left := row.deadline.Sub(now)
	setText(row.when, row.host.rowText(now)+"waiting "+age(now.Sub(row.received))+" · denied automatically in "+countdown(left))
	if imp := urgency(left); row.when.Importance != imp {
		row.when.Importance = imp
		row.when.Refresh()
	}
}

// urgency is how a countdown with left to go is coloured: orange in the
// last minute, red in the last 20 seconds.
func urgency(left time.Duration) widget.Importance {
	switch {
	case left <= 20*time.Second:
		return widget.DangerImportance
	case left <= time.Minute:
		return widget.WarningImportance
	}
	return widget.MediumImportance
}

// leftText is the detail's countdown: a plea to decide near the end.
func leftText(c gate.Call, now time.Time) string {
	left := c.Deadline.Sub(now)
	s := "in " + countdown(left) + " (at " + c.Deadline.Local().Format("15:04:05") + ")"
	if urgency(left) != widget.MediumImportance {
		s = "in " + countdown(left) + ": decide now, or the AI app is told no"
	}
	return s
}

// setHostLeft shows how long the AI app still waits for its answer.
func setHostLeft(l *widget.Label, h hostWait, now time.Time) {
	left := h.deadline.Sub(now)
	if left <= 0 {
		setText(l, "no longer: it is told to ask again once you approve")
		return
	}
	setText(l, countdown(left)+" more; then it is told to ask again once you approve")
}

// setLeft shows the countdown with its urgency.
func setLeft(l *widget.Label, c gate.Call, now time.Time) {
	setText(l, leftText(c, now))
	imp := urgency(c.Deadline.Sub(now))
	if l.Importance != imp {
		l.Importance = imp
		l.TextStyle.Bold = imp != widget.MediumImportance
		l.Refresh()
	}
}

// warningIcon is the icon a list row shows for the most serious of a
// call's warnings, or nil for none: a secret has its own, in red.
func warningIcon(ws []gate.Warning) fyne.Resource {
	if len(ws) == 0 {
		return nil
	}
	var icon fyne.Resource = theme.NewWarningThemedResource(theme.WarningIcon())
	for _, w := range ws {
		switch w.Kind {
		case gate.WarnSecret:
			return secretIcon()
		case gate.WarnToolChanged, gate.WarnDestructive:
			icon = theme.NewErrorThemedResource(theme.ErrorIcon())
		}
	}
	return icon
}

// secretIcon marks a secret, hidden or not: a crossed-out eye in red.
func secretIcon() fyne.Resource {
	return theme.NewErrorThemedResource(theme.VisibilityOffIcon())
}

// setText changes a label only if its text changes: every change costs a
// text layout.
func setText(l *widget.Label, s string) {
	if l.Text != s {
		l.SetText(s)
	}
}

// heading is a bold section title in the detail pane.
func heading(s string) *widget.Label {
	l := widget.NewLabel(s)
	l.TextStyle.Bold = true
	return l
}

func wrapped(s string) *widget.Label {
	l := widget.NewLabel(s)
	l.Wrapping = fyne.TextWrapWord
	return l
}

// showDetail fills the right-hand pane with the selected call.
func (r *review) showDetail() {
	if !r.built() {
		return // build shows the state
	}
	r.waited, r.left = nil, nil
	c := r.call(r.selected)
	if c == nil {
		msg := "No calls are waiting. When an AI app wants to run a tool, Countersign shows it here and sends a notification."
		switch {
		case r.d.paused:
			msg = "Countersign is paused, so every tool call is denied without asking you. Press Resume to review calls again."
		case len(r.calls) > 0:
			msg = "Select a call on the left to see it in full."
		}
		r.detail.Objects = []fyne.CanvasObject{wrapped(msg)}
		r.detail.Refresh()
		return
	}
	call := r.shown(*c)
	now := r.d.o.Now()

	// First what will happen: the summary with its target, what the server
	// says the tool does to data, and what the call sends.
	title := wrapped(Summary(call))
	title.TextStyle.Bold = true
	title.SizeName = theme.SizeNameSubHeadingText
	objs := []fyne.CanvasObject{title}
	host := hostWaitOf(*c)
	if host.gone {
		gone := wrapped(host.goneText())
		gone.Importance = widget.WarningImportance
		gone.TextStyle.Bold = true
		objs = append(objs, container.NewBorder(nil, nil, widget.NewIcon(theme.NewWarningThemedResource(theme.HistoryIcon())), nil, gone))
	}
	objs = append(objs, annotations(c.Info))
	// A retry is about the server's question: what the AI app answered is
	// what approving sends, so it comes first.
	if len(c.Exchanges) > 0 {
		objs = append(objs, exchanges(c.Exchanges)...)
	}
	objs = append(objs, heading("What it sends"))
	fs, more, ok := fields(call.Arguments)
	switch {
	case !ok:
		objs = append(objs, wrapped("The arguments could not be read; they are shown as sent under Technical details."))
	case len(fs) == 0:
		objs = append(objs, wrapped("Nothing."))
	default:
		grid := container.New(layout.NewFormLayout())
		for _, f := range fs {
			k := widget.NewLabel(f.Path)
			k.TextStyle.Bold = true
			v := wrapped(f.Value)
			if strings.Contains(f.Value, hiddenMark) {
				// Where the secret is: in red, with its icon.
				v.Importance = widget.DangerImportance
				v.TextStyle.Bold = true
				grid.Add(container.NewHBox(widget.NewIcon(secretIcon()), k))
			} else {
				grid.Add(k)
			}
			grid.Add(v)
		}
		objs = append(objs, grid)
		if more > 0 {
			objs = append(objs, wrapped(fmt.Sprintf("…and %d more values, under Technical details.", more)))
		}
	}
	if _, hidden := r.masked[c.ID]; hidden {
		objs = append(objs, r.revealRow(c.ID))
	}

	// Then the rest: who asks, where, how long it waits, warnings.
	tool := oneLine(c.Tool, 80)
	if c.Info != nil && c.Info.Title != "" {
		tool += " (" + oneLine(c.Info.Title, 80) + ")"
	}
	server := serverName(*c)
	if c.ServerName != "" && c.Server != "" {
		server += " (" + oneLine(c.Server, 40) + ")"
	}
	r.waited = widget.NewLabel(age(now.Sub(c.Received)))
	r.left = widget.NewLabel("")
	setLeft(r.left, *c, now)
	r.hostLeft = nil
	targets := "Unknown: Countersign could not tell which repository or project this call touches."
	if len(c.Targets) > 0 {
		targets = ""
		for i, t := range c.Targets {
			if i > 0 {
				targets += ", "
			}
			targets += oneLine(t, 80)
		}
	}
	objs = append(objs, heading("About this call"), container.New(layout.NewFormLayout(),
		heading("Server"), wrapped(server),
		heading("Tool"), wrapped(tool),
		heading("Asked by"), wrapped(clientName(*c)),
		heading("Target"), wrapped(targets),
		heading("Waiting"), r.waited,
		heading("Denied automatically"), r.left,
	))
	if !host.gone && !c.HostDeadline.IsZero() {
		// Two clocks: the AI app's own limit comes first.
		r.hostLeft = widget.NewLabel("")
		setHostLeft(r.hostLeft, host, now)
		form := objs[len(objs)-1].(*fyne.Container)
		form.Add(heading("The AI app waits"))
		form.Add(r.hostLeft)
	}

	if len(c.Warnings) > 0 {
		objs = append(objs, heading("Warnings"))
		for _, w := range c.Warnings {
			objs = append(objs, warning(w))
		}
		if trust := r.trustButton(*c); trust != nil {
			objs = append(objs, trust)
		}
	}

	objs = append(objs, heading("What the tool does"))
	if c.Info != nil && c.Info.Description != "" {
		objs = append(objs, wrapped(visible(c.Info.Description)))
	} else {
		objs = append(objs, wrapped("The server gave no description of this tool."))
	}

	// Last, behind a toggle, the arguments exactly as sent.
	js := widget.NewLabel(prettyJSON(call.Arguments))
	js.TextStyle.Monospace = true
	js.Wrapping = fyne.TextWrapBreak
	js.Selectable = true
	objs = append(objs, widget.NewAccordion(widget.NewAccordionItem("Technical details: the arguments as sent (JSON)", js)))

	r.detail.Objects = objs
	r.detail.Refresh()
	r.scroll.ScrollToTop()
}

// revealRow says a secret is hidden and offers to show it, or to hide it
// again once shown.
func (r *review) revealRow(id string) fyne.CanvasObject {
	if r.revealed[id] {
		l := wrapped("The secret is shown. Hide it before sharing your screen.")
		l.Importance = widget.DangerImportance
		btn := widget.NewButtonWithIcon("Hide the secret", theme.VisibilityOffIcon(), func() { r.reveal(id, false) })
		return container.NewBorder(nil, nil, widget.NewIcon(secretIcon()), container.NewHBox(btn), l)
	}
	l := wrapped("A secret is hidden here. Show it only if you need to check it.")
	btn := widget.NewButtonWithIcon("Show the secret", theme.VisibilityIcon(), func() { r.reveal(id, true) })
	return container.NewBorder(nil, nil, widget.NewIcon(secretIcon()), container.NewHBox(btn), l)
}

// exchanges shows a retried call's questions from the server beside the AI
// app's answers, which the server gets with the call.
func exchanges(xs []gate.Exchange) []fyne.CanvasObject {
	title := "The server asked a question, and the AI app answered"
	if len(xs) > 1 {
		title = fmt.Sprintf("The server asked %d questions, and the AI app answered", len(xs))
	}
	objs := []fyne.CanvasObject{heading(title),
		wrapped("This call repeats an earlier one with the AI app's answers; the server acts on them if you approve.")}
	for i, x := range xs {
		asked, answered, seen := exchangeText(x)
		var q *widget.Label
		if seen {
			q = wrapped(asked)
		} else {
			q = wrapped("Countersign did not see the server's question, so it cannot show what this answers.")
			q.Importance = widget.WarningImportance
		}
		grid := container.New(layout.NewFormLayout(),
			heading("The server asked"), q,
			heading("The AI app answered"), wrapped(answered))
		if len(xs) > 1 {
			k := wrapped(exchangeKey(i, x))
			k.Importance = widget.LowImportance
			objs = append(objs, k)
		}
		objs = append(objs, grid)
	}
	return objs
}

// annotations says plainly, in colour, what the server claims the tool
// does to data. The claims come from the server, and say so.
func annotations(info *gate.ToolInfo) fyne.CanvasObject {
	seg := func(text string, color fyne.ThemeColorName) *widget.TextSegment {
		return &widget.TextSegment{Text: text, Style: widget.RichTextStyle{
			ColorName: color, Inline: true, TextStyle: fyne.TextStyle{Bold: true}}}
	}
	plain := func(text string) *widget.TextSegment {
		return &widget.TextSegment{Text: text, Style: widget.RichTextStyleInline}
	}
	var segs []widget.RichTextSegment
	switch {
	case info == nil:
		segs = append(segs, seg("Unknown tool", theme.ColorNameError),
			plain(": the server never described it, so treat it as able to change or delete data."))
	case info.ReadOnly():
		segs = append(segs, seg("Read-only", theme.ColorNameSuccess),
			plain(": the server says this tool changes nothing."))
	case info.Destructive():
		segs = append(segs, seg("May change or delete data", theme.ColorNameError),
			plain(": the server does not say this tool is safe."))
	default:
		segs = append(segs, seg("Changes data", theme.ColorNameWarning),
			plain(": the server says it adds or updates, but does not delete or overwrite."))
	}
	if info != nil && info.IdempotentHint != nil && *info.IdempotentHint {
		segs = append(segs, plain(" Running it twice has no further effect."))
	}
	if info != nil && info.OpenWorldHint != nil && *info.OpenWorldHint {
		segs = append(segs, plain(" It reaches systems outside the server."))
	}
	rt := widget.NewRichText(segs...)
	rt.Wrapping = fyne.TextWrapWord
	return rt
}

// warning is one warning: an icon for how serious, the sentence, and the
// details behind a fold.
func warning(w gate.Warning) fyne.CanvasObject {
	var icon fyne.Resource = theme.NewWarningThemedResource(theme.WarningIcon())
	text := wrapped(visible(w.Text))
	switch w.Kind {
	case gate.WarnSecret:
		icon = secretIcon()
		text.Importance = widget.DangerImportance
	case gate.WarnToolChanged:
		icon = theme.NewErrorThemedResource(theme.ErrorIcon())
	case gate.WarnToolNew:
		icon = theme.InfoIcon()
	}
	line := container.NewBorder(nil, nil, widget.NewIcon(icon), nil, text)
	if w.Detail == "" {
		return line
	}
	d := widget.NewLabel(visible(w.Detail))
	d.TextStyle.Monospace = true
	d.Wrapping = fyne.TextWrapBreak
	d.Selectable = true
	title := "Details"
	if w.Kind == gate.WarnToolChanged {
		// A sentence first; the definition's diff behind the toggle.
		if sum := toolChangeSummary(w.Detail); sum != "" {
			line = container.NewVBox(line, wrapped(sum))
		}
		title = "Show the exact change"
	}
	acc := widget.NewAccordion(widget.NewAccordionItem(title, d))
	return container.NewVBox(line, acc)
}

// trustButton offers to trust a tool that changed since it was first seen,
// or that is new, once the person has read the warning: later calls to it
// stop warning. This call is not decided by it. Nil when there is nothing
// to trust.
func (r *review) trustButton(c gate.Call) fyne.CanvasObject {
	label, definition := "", ""
	for _, w := range c.Warnings {
		switch {
		case w.Definition == "":
		case w.Kind == gate.WarnToolChanged:
			label, definition = "Trust the changed definition", w.Definition
		case w.Kind == gate.WarnToolNew && label == "":
			label, definition = "Trust this new tool", w.Definition
		}
	}
	if label == "" || c.Server == "" {
		return nil
	}
	key := c.Server + "\x00" + c.Tool + "\x00" + definition
	trusted := func(tool string) *widget.Label {
		l := wrapped("Trusted: later calls to " + oneLine(tool, 80) + " will not warn about this definition.")
		l.Importance = widget.SuccessImportance
		return l
	}
	if r.trusted[key] {
		return trusted(c.Tool)
	}
	note := wrapped("Later calls to " + oneLine(c.Tool, 80) + " will not warn about this. This call still waits for your decision.")
	note.Importance = widget.LowImportance
	btn := widget.NewButtonWithIcon(label, theme.ConfirmIcon(), nil)
	btn.OnTapped = func() {
		btn.Disable()
		note.Importance = widget.MediumImportance
		note.SetText("Saving…")
		svc := r.d.o.Settings
		server, tool := c.Server, c.Tool
		r.d.background(func(ctx context.Context) func() {
			err := svc.AcceptTool(ctx, server, tool, definition)
			return func() {
				if err != nil {
					btn.Enable()
					note.Importance = widget.DangerImportance
					note.SetText("Not trusted: " + err.Error())
					return
				}
				if r.trusted == nil {
					r.trusted = map[string]bool{}
				}
				r.trusted[key] = true
				btn.Hide()
				done := trusted(tool)
				note.Importance = done.Importance
				note.SetText(done.Text)
			}
		})
	}
	return container.NewVBox(container.NewHBox(btn), note)
}
