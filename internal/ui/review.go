package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/ui/attention"
)

// review is the review window: the waiting calls on the left, the selected
// one in full on the right, the decisions along the bottom. All its
// methods run on the UI goroutine.
type review struct {
	d       *Desktop
	win     fyne.Window // nil until first shown
	visible bool

	calls    []gate.Call     // waiting, oldest first
	checked  map[string]bool // ticked for a decision together
	selected string          // the call shown in full; "" for none
	trusted  map[string]bool // server+"\x00"+tool whose definition the person trusted here
	// changedAt is when the calls a decision would act on last changed
	// without the person choosing (a call arrived, ended or moved).
	changedAt time.Time
	endNotes  []string                   // notes on calls that ended without the person, since the last refresh
	listSel   int                        // the row the list widget has selected; -1 for none
	shownAt   time.Time                  // when the selected call was put on screen
	masked    map[string]json.RawMessage // arguments with secrets hidden, by call
	revealed  map[string]bool            // calls whose secrets the person chose to see
	raised    int                        // how many times show brought the window forward
	syncing   bool                       // the list's selection is being set from code

	// An open dialog about some calls; it closes if one of them ends.
	dlg    dialog.Dialog
	dlgIDs []string
	editor *editor // the open editor, if dlg is one

	content   fyne.CanvasObject
	list      *widget.List
	rows      []*callRow // every row the list made; it reuses them as it scrolls
	tickAll   *widget.Check
	count     *widget.Label
	note      *widget.Label
	noteBox   *fyne.Container
	listPane  *fyne.Container // the list, with the note under it
	pausedBox *fyne.Container
	detail    *fyne.Container
	scroll    *container.Scroll
	waited    *widget.Label // in the detail: how long the call has waited
	left      *widget.Label // in the detail: time to auto-deny
	hostLeft  *widget.Label // in the detail: how long the AI app still waits; nil when it waits as long

	approveBtn, denyBtn, reasonBtn, editBtn *widget.Button
	why                                     *widget.Label
}

// newReview makes the review window's state; its widgets are built when
// the first call arrives or the window is first opened (ensure), so a tray
// app that has not been needed yet lays out no text and loads no fonts.
func newReview(d *Desktop) *review {
	return &review{d: d, checked: map[string]bool{}, listSel: -1,
		masked: map[string]json.RawMessage{}, revealed: map[string]bool{}}
}

// built reports whether the widgets exist.
func (r *review) built() bool { return r.content != nil }

// ensure builds the widgets, the first time.
func (r *review) ensure() {
	if r.content == nil {
		r.build()
	}
}

// modifier is the platform's shortcut modifier, and how it is written.
func modifier() (fyne.KeyModifier, string) { return modifierFor(runtime.GOOS) }

// modifierFor is modifier on the system goos. Keys are written in words,
// never as symbols (⌘, arrows): the font Fyne draws with lacks those, and
// where the system offers no other font (Windows programs under Wine)
// they show as boxes.
func modifierFor(goos string) (fyne.KeyModifier, string) {
	if goos == "darwin" {
		return fyne.KeyModifierSuper, "Cmd+"
	}
	return fyne.KeyModifierControl, "Ctrl+"
}

func (r *review) build() {
	r.list = widget.NewList(
		func() int { return len(r.calls) },
		func() fyne.CanvasObject { return newCallRow(r) },
		func(i widget.ListItemID, o fyne.CanvasObject) {
			if i < len(r.calls) {
				o.(*callRow).set(r.shown(r.calls[i]))
			}
		})
	r.list.OnSelected = func(i widget.ListItemID) {
		r.listSel = i
		if !r.syncing && i < len(r.calls) {
			r.choose(r.calls[i].ID, false)
		}
	}
	r.tickAll = widget.NewCheck("Tick all", func(on bool) {
		if r.syncing {
			return
		}
		r.tickEvery(on)
	})
	r.count = widget.NewLabel("")
	listHead := container.NewHBox(r.tickAll, layout.NewSpacer(), r.count)

	r.note = widget.NewLabel("")
	r.note.Wrapping = fyne.TextWrapWord
	r.noteBox = container.NewBorder(nil, nil, widget.NewIcon(theme.InfoIcon()),
		widget.NewButtonWithIcon("", theme.CancelIcon(), func() { r.setNote("") }), r.note)
	r.noteBox.Hide()

	paused := widget.NewLabel("Paused: every call is denied until you resume.")
	paused.TextStyle.Bold = true
	r.pausedBox = container.NewBorder(nil, nil, widget.NewIcon(theme.MediaPauseIcon()),
		widget.NewButtonWithIcon("Resume", theme.MediaPlayIcon(), func() { r.d.setPaused(false) }), paused)
	r.pausedBox.Hide()

	r.detail = container.NewVBox()
	r.scroll = container.NewVScroll(r.detail)

	r.approveBtn = widget.NewButtonWithIcon("Approve", theme.ConfirmIcon(), r.approve)
	// Contrast: see decisionTheme.
	r.approveBtn.Importance = widget.SuccessImportance
	r.denyBtn = widget.NewButtonWithIcon("Deny", theme.CancelIcon(), r.deny)
	r.denyBtn.Importance = widget.DangerImportance
	r.reasonBtn = widget.NewButton("Deny with reason…", r.denyWithReason)
	r.editBtn = widget.NewButtonWithIcon("Edit and approve…", theme.DocumentCreateIcon(), r.edit)
	// One line under the buttons: why some are disabled, or else the keys.
	r.why = widget.NewLabel("")
	r.why.Wrapping = fyne.TextWrapWord
	actions := container.NewVBox(
		widget.NewSeparator(),
		container.NewHBox(container.NewThemeOverride(container.NewHBox(r.approveBtn, r.denyBtn), decisionTheme{}),
			r.reasonBtn, r.editBtn),
		r.why,
	)

	// Notes tell of calls that already left the list: they sit under it,
	// not above the call now shown, which they are not about.
	r.listPane = container.NewBorder(listHead, r.noteBox, nil, nil, r.list)
	split := container.NewHSplit(r.listPane, r.scroll)
	split.Offset = 0.4
	r.content = container.NewBorder(r.pausedBox, actions, nil, nil, split)
	r.refresh()
	r.showDetail()
}

// window returns the review window, making it the first time.
func (r *review) window() fyne.Window {
	if r.win != nil {
		return r.win
	}
	r.ensure()
	w := r.d.newWindow("Countersign: review tool calls", fyne.NewSize(1040, 680))
	// Closing hides it: the main window or the tray stays to reach it.
	w.SetCloseIntercept(func() { r.visible = false; w.Hide() })
	w.SetContent(r.content)
	mod, _ := modifier()
	c := w.Canvas()
	add := func(k fyne.KeyName, f func()) {
		c.AddShortcut(&desktop.CustomShortcut{KeyName: k, Modifier: mod}, func(fyne.Shortcut) {
			if c.Overlays().Top() == nil { // not while a dialog is open
				f()
			}
		})
	}
	add(fyne.KeyReturn, r.approveByKey)
	add(fyne.KeyEnter, r.approveByKey)
	add(fyne.KeyD, r.deny)
	add(fyne.KeyR, r.denyWithReason)
	add(fyne.KeyE, r.edit)
	add(fyne.KeyDown, func() { r.step(1) })
	add(fyne.KeyUp, func() { r.step(-1) })
	c.AddShortcut(&fyne.ShortcutSelectAll{}, func(fyne.Shortcut) {
		if c.Overlays().Top() == nil {
			r.tickEvery(len(r.checked) < len(r.calls))
		}
	})
	c.SetOnTypedKey(func(ev *fyne.KeyEvent) { // when no widget has the focus
		switch ev.Name {
		case fyne.KeyDown:
			r.step(1)
		case fyne.KeyUp:
			r.step(-1)
		}
	})
	r.win = w
	return w
}

// show brings the review window forward, over other windows: a call is
// waiting for the person. Where the window manager refuses to hand over
// the focus, it marks the window as wanting attention instead.
func (r *review) show() {
	w := r.window()
	w.SetTitle(r.title())
	r.visible = true
	r.raised++
	r.tick()
	w.Show()
	w.RequestFocus()
	attention.Request(w)
}

// waiting is how many calls wait.
func (r *review) waiting() int { return len(r.calls) }

func (r *review) indexOf(id string) int {
	for i := range r.calls {
		if r.calls[i].ID == id {
			return i
		}
	}
	return -1
}

func (r *review) call(id string) *gate.Call {
	if i := r.indexOf(id); i >= 0 {
		return &r.calls[i]
	}
	return nil
}

func idNumber(id string) uint64 {
	n, _ := strconv.ParseUint(id, 10, 64)
	return n
}

// add puts a newly waiting call in the list; the first call to arrive when
// none is selected becomes the selected one.
func (r *review) add(c gate.Call, initial bool) {
	if r.indexOf(c.ID) >= 0 {
		return
	}
	r.ensure() // the window is about to show the call
	n := idNumber(c.ID)
	i := sort.Search(len(r.calls), func(i int) bool { return idNumber(r.calls[i].ID) > n })
	r.calls = append(r.calls, gate.Call{})
	copy(r.calls[i+1:], r.calls[i:])
	r.calls[i] = c
	if m, ok := maskSecrets(c.Arguments); ok {
		r.masked[c.ID] = m
	}
	if r.selected == "" {
		r.choose(c.ID, true)
	}
}

// update shows what changed about a waiting call: the AI app stopped
// waiting for it, or asked for it again.
func (r *review) update(c gate.Call) {
	i := r.indexOf(c.ID)
	if i < 0 {
		return
	}
	r.calls[i] = c
	if r.selected == c.ID {
		r.showDetail()
	}
}

// ended takes a call that got its verdict somewhere else (timeout, the AI
// app cancelling, pause, shutdown) out of the list, with a note.
func (r *review) ended(c gate.Call, v gate.Verdict) {
	if r.indexOf(c.ID) < 0 {
		return // decided here, or never shown
	}
	r.endNotes = append(r.endNotes, endedNote(r.shown(c), v))
	r.remove(c.ID)
}

// endedNote tells the person what became of a call they did not decide.
func endedNote(c gate.Call, v gate.Verdict) string {
	what := fmt.Sprintf("%s (%s, %s)", Summary(c), serverName(c), oneLine(c.Tool, 60))
	switch v.Outcome {
	case gate.OutcomeApproved:
		return "Approved: " + what + "."
	case gate.OutcomeDenied:
		return "Denied: " + what + "."
	case gate.OutcomeTimedOut:
		return "Denied automatically because nobody decided in time: " + what + "."
	case gate.OutcomeCancelled:
		return "The AI app cancelled " + what + "."
	case gate.OutcomeDisconnected:
		return "The AI app went away, so this call was denied: " + what + "."
	case gate.OutcomeUpstreamLost:
		return "The connection to " + serverName(c) + " was lost, so this call was denied: " + what + "."
	case gate.OutcomePaused:
		return "Denied because Countersign is paused: " + what + "."
	case gate.OutcomeShutdown:
		return "Denied because Countersign is shutting down: " + what + "."
	}
	return "Ended (" + v.Outcome.String() + "): " + what + "."
}

// remove takes a call out of the list, closing any dialog about it and
// moving the selection to its neighbour.
func (r *review) remove(id string) {
	i := r.indexOf(id)
	if i < 0 {
		return
	}
	r.calls = append(r.calls[:i], r.calls[i+1:]...)
	delete(r.masked, id)
	delete(r.revealed, id)
	if r.checked[id] {
		delete(r.checked, id)
		r.changedAt = r.d.o.Now()
	}
	for _, d := range r.dlgIDs {
		if d == id {
			r.closeDialog()
			break
		}
	}
	if r.selected == id {
		r.selected = ""
		switch {
		case i < len(r.calls):
			r.choose(r.calls[i].ID, true)
		case len(r.calls) > 0:
			r.choose(r.calls[len(r.calls)-1].ID, true)
		default:
			r.showDetail()
		}
	}
}

// choose shows a call in full. auto says the person did not pick it.
func (r *review) choose(id string, auto bool) {
	if id == r.selected {
		return
	}
	r.selected = id
	r.shownAt = r.d.o.Now()
	if auto {
		r.changedAt = r.d.o.Now()
	}
	r.showDetail()
	r.syncList()
	r.updateActions()
}

// step selects the next (1) or previous (-1) call.
func (r *review) step(delta int) {
	if len(r.calls) == 0 {
		return
	}
	i := r.indexOf(r.selected) + delta
	if i < 0 {
		i = 0
	}
	if i >= len(r.calls) {
		i = len(r.calls) - 1
	}
	r.choose(r.calls[i].ID, false)
}

// syncList makes the list widget's selection match the selected call.
func (r *review) syncList() {
	i := r.indexOf(r.selected)
	if i == r.listSel {
		return
	}
	r.syncing = true
	defer func() { r.syncing = false }()
	if i < 0 {
		r.list.UnselectAll()
		r.listSel = -1
		return
	}
	r.list.Select(i)
	r.listSel = i
}

func (r *review) setTicked(id string, on bool) {
	if on {
		r.checked[id] = true
	} else {
		delete(r.checked, id)
	}
	r.updateActions()
	r.syncTickAll()
}

func (r *review) tickEvery(on bool) {
	clear(r.checked)
	if on {
		for _, c := range r.calls {
			r.checked[c.ID] = true
		}
	}
	r.list.Refresh()
	r.updateActions()
	r.syncTickAll()
}

func (r *review) syncTickAll() {
	all := len(r.calls) > 0 && len(r.checked) == len(r.calls)
	if r.tickAll.Checked != all {
		r.syncing = true
		r.tickAll.SetChecked(all)
		r.syncing = false
	}
	if len(r.calls) == 0 {
		r.tickAll.Disable()
	} else {
		r.tickAll.Enable()
	}
}

// refresh brings the list, counts, notes and buttons up to date after
// calls came or went.
func (r *review) refresh() {
	if !r.built() {
		return // build shows the state
	}
	r.list.Refresh()
	r.syncList()
	switch n := len(r.calls); n {
	case 0:
		r.count.SetText("No calls waiting")
	case 1:
		r.count.SetText("1 call waiting")
	default:
		r.count.SetText(fmt.Sprintf("%d calls waiting", n))
	}
	switch n := len(r.endNotes); {
	case n == 1:
		r.setNote(r.endNotes[0])
	case n > 1:
		r.setNote(fmt.Sprintf("%d calls ended without you. The last: %s", n, r.endNotes[n-1]))
	}
	r.endNotes = r.endNotes[:0]
	r.syncTickAll()
	r.updateActions()
	r.showPaused()
	if r.win != nil {
		r.win.SetTitle(r.title())
	}
}

func (r *review) title() string {
	if n := len(r.calls); n > 0 {
		return fmt.Sprintf("Countersign: %d waiting", n)
	}
	return "Countersign: review tool calls"
}

// showPaused shows or hides the paused banner at once, in an open window
// too, and the empty pane says why no call comes.
func (r *review) showPaused() {
	if !r.built() {
		return // build shows the state
	}
	if r.d.paused == r.pausedBox.Visible() {
		return
	}
	if r.d.paused {
		r.pausedBox.Show()
	} else {
		r.pausedBox.Hide()
	}
	r.content.Refresh() // lay the window out around the banner
	if r.call(r.selected) == nil {
		r.showDetail()
	}
}

func (r *review) setNote(s string) {
	r.note.SetText(s)
	if s == "" {
		r.noteBox.Hide()
	} else {
		r.noteBox.Show()
	}
	// Lay the list out around the note: twice, since a wrapped label knows
	// its height only once it has its width.
	r.listPane.Refresh()
	r.listPane.Refresh()
}

// tick refreshes ages and countdowns.
func (r *review) tick() {
	if !r.visible || len(r.calls) == 0 {
		return
	}
	now := r.d.o.Now()
	for _, row := range r.rows { // only the rows the list made: about a screenful
		if row.id != "" {
			row.tickTime(now)
		}
	}
	if c := r.call(r.selected); c != nil && r.waited != nil {
		setText(r.waited, age(now.Sub(c.Received)))
		setLeft(r.left, *c, now)
		if r.hostLeft != nil {
			setHostLeft(r.hostLeft, hostWaitOf(*c), now)
		}
	}
}

// targets are the calls a decision acts on: the ticked ones, or else the
// selected one.
func (r *review) targets() []gate.Call {
	var out []gate.Call
	if len(r.checked) > 0 {
		for _, c := range r.calls {
			if r.checked[c.ID] {
				out = append(out, c)
			}
		}
		return out
	}
	if c := r.call(r.selected); c != nil {
		out = append(out, *c)
	}
	return out
}

// updateActions enables the decision buttons that can act, labels them
// with how many calls they act on, and says why any is disabled.
func (r *review) updateActions() {
	t := r.targets()
	n := ""
	if len(r.checked) > 0 {
		n = " " + strconv.Itoa(len(t))
	}
	r.approveBtn.SetText("Approve" + n)
	r.denyBtn.SetText("Deny" + n)
	r.reasonBtn.SetText("Deny" + n + " with reason…")
	why := ""
	switch {
	case len(r.calls) == 0:
		why = "Nothing to decide: no calls are waiting."
	case len(t) == 0:
		why = "Select a call to decide it."
	case len(t) > 1:
		why = fmt.Sprintf("Approve and Deny act on the %d ticked calls. Edit works on one call at a time: untick them to edit the selected call.", len(t))
	}
	for _, b := range []*widget.Button{r.approveBtn, r.denyBtn, r.reasonBtn} {
		if len(t) == 0 {
			b.Disable()
		} else {
			b.Enable()
		}
	}
	if len(t) == 1 {
		r.editBtn.Enable()
	} else {
		r.editBtn.Disable()
	}
	if why == "" {
		r.why.Importance = widget.LowImportance
		why = keysHint
	} else {
		r.why.Importance = widget.MediumImportance
	}
	r.why.SetText(why)
}

// keysHint lists the review window's keyboard shortcuts.
var keysHint = func() string {
	_, m := modifier()
	return keysHintFor(m)
}()

// keysHintFor is keysHint with the modifier written m.
func keysHintFor(m string) string {
	return m + "Enter approve · " + m + "D deny · " + m + "R deny with reason · " + m + "E edit · " +
		m + "Down / " + m + "Up next/previous · " + m + "A tick all"
}

// ready reports whether a decision may be taken now: not if the calls it
// would act on changed under the person a moment ago.
func (r *review) ready() bool {
	if r.d.o.Now().Sub(r.changedAt) < guard {
		r.setNote("The calls shown just changed. Look again, then decide.")
		return false
	}
	return true
}

// decide records a decision on calls and takes them out of the list. An
// edit the rules refuse is returned, and its call stays.
func (r *review) decide(calls []gate.Call, d gate.Decision) error {
	done, gone := 0, 0
	var refused error
	shownCall := r.shown(calls[0]) // before remove forgets its masked arguments
	for _, c := range calls {
		err := r.d.o.Queue.Decide(c.ID, d)
		switch {
		case err == nil:
			done++
		case errors.Is(err, gate.ErrNotPending):
			gone++
		case errors.Is(err, gate.ErrEditRefused):
			r.d.log.Info("the rules refused an edit", "call", c.ID)
			refused = err
			continue
		default:
			r.d.log.Error("recording a decision failed", "call", c.ID, "err", err)
			r.setNote("Countersign could not record that decision: " + err.Error())
			continue
		}
		r.remove(c.ID)
	}
	verb := "Denied"
	switch {
	case d.Approve && d.Arguments != nil:
		verb = "Approved with your changes"
	case d.Approve:
		verb = "Approved"
	}
	switch {
	case done == 1 && gone == 0:
		r.setNote(verb + ": " + Summary(shownCall) + ".")
	case done > 1:
		r.setNote(fmt.Sprintf("%s %d calls.", verb, done))
	}
	if gone > 0 {
		r.setNote(fmt.Sprintf("%d of these calls had already ended, so your decision did not apply to them.", gone))
	}
	r.refresh()
	r.d.tray.update()
	return refused
}

func (r *review) approve() {
	t := r.targets()
	if len(t) == 0 || !r.ready() {
		return
	}
	if len(t) == 1 {
		if fx := effects(t[0]); len(fx) > 0 {
			r.confirmApprove(t[0], fx)
			return
		}
		r.decide(t, gate.Decision{Approve: true})
		return
	}
	// Several at once: show each one before they run.
	lines := make([]string, len(t))
	for i, c := range t {
		lines[i] = fmt.Sprintf("• %s: %s (%s)", serverName(c), Summary(r.shown(c)), oneLine(c.Tool, 60))
		for _, e := range effects(c) {
			lines[i] += "\n    " + e
		}
	}
	msg := widget.NewLabel(joinLines(lines))
	msg.Wrapping = fyne.TextWrapWord
	body := container.NewVScroll(msg)
	body.SetMinSize(fyne.NewSize(560, 240))
	dlg := dialog.NewCustomConfirm(fmt.Sprintf("Approve these %d calls?", len(t)), "Approve "+strconv.Itoa(len(t)), "Cancel",
		body, func(ok bool) {
			r.dlg, r.dlgIDs = nil, nil
			if ok {
				r.decide(t, gate.Decision{Approve: true})
			}
		}, r.window())
	r.openDialog(dlg, t)
}

// approveByKey is Ctrl+Enter: it approves one ordinary call that has been
// on screen for readTime, or opens the confirmation for ticked calls. A
// call that deserves a second step is approved only with the button.
func (r *review) approveByKey() {
	t := r.targets()
	if len(t) == 0 || !r.ready() {
		return
	}
	if len(t) == 1 {
		_, m := modifier()
		if len(effects(t[0])) > 0 {
			r.setNote(m + "Enter does not approve this call. " + effects(t[0])[0] + " Press Approve to see what it does, then confirm.")
			return
		}
		if r.d.o.Now().Sub(r.shownAt) < readTime {
			r.setNote("This call has only just appeared. Read it, then press " + m + "Enter again.")
			return
		}
	}
	r.approve()
}

// confirmApprove is the second step before approving a call that may
// change or delete data, carries a secret or comes from a changed tool: a
// dialog naming what approving does.
func (r *review) confirmApprove(c gate.Call, fx []string) {
	lines := make([]string, len(fx))
	for i, e := range fx {
		lines[i] = "• " + e
	}
	what := wrapped(Summary(r.shown(c)) + " (" + serverName(c) + ")")
	what.TextStyle.Bold = true
	msg := wrapped(joinLines(lines))
	msg.Importance = widget.DangerImportance
	body := container.NewVBox(what, widget.NewLabel("If you approve:"), msg)
	dlg := dialog.NewCustomConfirm("Approve this call?", "Yes, approve it", "Cancel", body, func(ok bool) {
		r.dlg, r.dlgIDs = nil, nil
		if ok {
			r.decide([]gate.Call{c}, gate.Decision{Approve: true})
		}
	}, r.window())
	dlg.Resize(fyne.NewSize(560, 260))
	r.openDialog(dlg, []gate.Call{c})
}

// shown is a call as the window shows it: its secrets hidden unless the
// person chose to see them.
func (r *review) shown(c gate.Call) gate.Call {
	if m, ok := r.masked[c.ID]; ok && !r.revealed[c.ID] {
		c.Arguments = m
	}
	return c
}

// reveal shows or hides the secrets of a call, on the person's request.
func (r *review) reveal(id string, on bool) {
	if on {
		r.revealed[id] = true
	} else {
		delete(r.revealed, id)
	}
	r.list.Refresh()
	r.showDetail()
}

func (r *review) deny() {
	t := r.targets()
	if len(t) == 0 || !r.ready() {
		return
	}
	r.decide(t, gate.Decision{})
}

func (r *review) denyWithReason() {
	t := r.targets()
	if len(t) == 0 || !r.ready() {
		return
	}
	entry := widget.NewEntry()
	entry.SetPlaceHolder("What the AI app is told, e.g. \"use the staging project\"")
	title := "Deny with a reason"
	if len(t) > 1 {
		title = fmt.Sprintf("Deny %d calls with a reason", len(t))
	}
	send := func() {
		reason := oneLine(entry.Text, 500)
		r.closeDialog()
		r.decide(t, gate.Decision{Reason: reason})
	}
	// Deny carries the deny icon, not the ✓ a form dialog's button has.
	denyB := widget.NewButtonWithIcon("Deny", theme.CancelIcon(), send)
	denyB.Importance = widget.DangerImportance
	cancelB := widget.NewButton("Cancel", r.closeDialog)
	body := container.NewVBox(widget.NewLabel("Reason, told to the AI app:"), entry)
	dlg := dialog.NewCustomWithoutButtons(title, body, r.window())
	dlg.SetButtons([]fyne.CanvasObject{cancelB, container.NewThemeOverride(denyB, decisionTheme{})})
	entry.OnSubmitted = func(string) { send() }
	dlg.Resize(fyne.NewSize(560, 200))
	r.openDialog(dlg, t)
	r.window().Canvas().Focus(entry)
}

func (r *review) edit() {
	t := r.targets()
	if len(t) != 1 || !r.ready() {
		return
	}
	var e *editor
	_, hide := r.masked[t[0].ID]
	e = newEditor(t[0], hide, func(args []byte) {
		// The rules run again on an edit: a refusal keeps the editor open
		// with the reason, and the call keeps waiting.
		var refused *gate.EditRefusedError
		if err := r.decide(t, gate.Decision{Approve: true, Arguments: args}); errors.As(err, &refused) {
			e.refuse(refused.Reason)
			return
		}
		r.closeDialog()
	}, func() { r.closeDialog() })
	dlg := dialog.NewCustomWithoutButtons("Edit, then approve: "+oneLine(t[0].Tool, 60), e.content, r.window())
	dlg.Resize(fyne.NewSize(720, 520))
	r.openDialog(dlg, t)
	r.editor = e
	r.window().Canvas().Focus(e.entry)
}

func (r *review) openDialog(d dialog.Dialog, about []gate.Call) {
	r.closeDialog()
	r.dlg = d
	r.dlgIDs = r.dlgIDs[:0]
	for _, c := range about {
		r.dlgIDs = append(r.dlgIDs, c.ID)
	}
	d.Show()
}

func (r *review) closeDialog() {
	r.editor = nil
	if r.dlg != nil {
		d := r.dlg
		r.dlg, r.dlgIDs = nil, nil
		d.Hide()
	}
}

func joinLines(lines []string) string {
	s := ""
	for i, l := range lines {
		if i > 0 {
			s += "\n"
		}
		s += l
	}
	return s
}
