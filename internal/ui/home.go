package ui

import (
	"fmt"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/countersign/countersign/internal/buildinfo"
)

// homeWindow is Countersign's main window: what the tray menu offers, for
// a desktop with no tray and for a second launch. Closing it keeps
// Countersign running.
type homeWindow struct {
	d   *Desktop
	win fyne.Window

	content fyne.CanvasObject // nil until the window is first opened
	status  *widget.Label
	noTray  *widget.Label // why this window is here, where there is no tray
	review  *widget.Button
	pause   *widget.Button
	visible bool

	// What the window shows, kept while it is not built.
	statusText string
	waiting    int
	paused     bool
	noTrayOn   bool
}

// noTrayText explains the main window where there is no tray.
const noTrayText = "This desktop has no system tray, so Countersign keeps this window instead. " +
	"Closing it keeps Countersign running: the review window opens when an AI app needs you, " +
	"and starting Countersign again brings this window back."

func newHomeWindow(d *Desktop) *homeWindow {
	return &homeWindow{d: d}
}

// build makes the widgets, the first time the window opens.
func (h *homeWindow) build() {
	d := h.d
	h.status = widget.NewLabel("")
	h.status.TextStyle.Bold = true
	h.noTray = wrapped(noTrayText)
	h.noTray.Hide()
	h.review = widget.NewButtonWithIcon("Review calls…", theme.VisibilityIcon(), d.showReview)
	h.pause = widget.NewButtonWithIcon("Pause all calls", theme.MediaPauseIcon(), func() { d.setPaused(!d.paused) })
	quit := widget.NewButtonWithIcon("Quit", theme.LogoutIcon(), d.quit)
	actions := container.NewGridWithColumns(2,
		h.review,
		widget.NewButtonWithIcon("Settings…", theme.SettingsIcon(), d.showSettings),
		widget.NewButtonWithIcon("Connect your AI app…", theme.ComputerIcon(), d.showConnect),
		widget.NewButtonWithIcon("Audit…", theme.ListIcon(), d.showAudit),
		widget.NewButtonWithIcon("Getting started…", theme.NavigateNextIcon(), d.showGuide),
		widget.NewButtonWithIcon("Help", theme.HelpIcon(), d.showHelp),
	)
	about := widget.NewButtonWithIcon("About Countersign", theme.InfoIcon(), d.showAbout)
	h.content = container.NewBorder(
		container.NewVBox(h.status, widget.NewSeparator()),
		container.NewVBox(h.noTray, widget.NewSeparator(), container.NewHBox(h.pause, about, layout.NewSpacer(), quit)),
		nil, nil,
		container.NewVBox(
			wrapped("Countersign asks you before your AI apps use your work tools. Every call waits here until you approve or deny it."),
			actions))
	h.showStatus()
	h.showNoTray()
}

func (h *homeWindow) window() fyne.Window {
	if h.win == nil {
		h.build()
		h.win = h.d.newWindow("Countersign", fyne.NewSize(560, 420))
		h.win.SetCloseIntercept(func() { h.visible = false; h.win.Hide() })
		h.win.SetContent(h.content)
	}
	return h.win
}

// show brings the main window forward.
func (h *homeWindow) show() {
	w := h.window()
	h.visible = true
	w.Show()
	w.RequestFocus()
	w.Content().Refresh() // wrapped text knows its height once laid out at its width
}

// setStatus shows the same status as the tray menu's first line.
func (h *homeWindow) setStatus(text string, waiting int, paused bool) {
	h.statusText, h.waiting, h.paused = text, waiting, paused
	if h.content != nil {
		h.showStatus()
	}
}

func (h *homeWindow) showStatus() {
	h.status.SetText(h.statusText)
	if h.waiting > 0 {
		h.review.SetText("Review waiting calls…")
		h.review.Importance = widget.HighImportance
	} else {
		h.review.SetText("Review calls…")
		h.review.Importance = widget.MediumImportance
	}
	h.review.Refresh()
	if h.paused {
		h.pause.SetText("Resume")
		h.pause.SetIcon(theme.MediaPlayIcon())
	} else {
		h.pause.SetText("Pause all calls")
		h.pause.SetIcon(theme.MediaPauseIcon())
	}
}

// setNoTray says why the window is there when there is no tray.
func (h *homeWindow) setNoTray(on bool) {
	h.noTrayOn = on
	if h.content != nil {
		h.showNoTray()
	}
}

func (h *homeWindow) showNoTray() {
	if h.noTrayOn {
		h.noTray.Show()
	} else {
		h.noTray.Hide()
	}
	h.content.Refresh()
}

// helpText answers what a person asks first, in plain words.
var helpText = []struct{ q, a string }{
	{"What does Countersign do?",
		"Your AI apps (such as VS Code, Cursor or Claude Desktop) can use work tools like GitHub or Jira for you. " +
			"Countersign sits in between: every time an AI app wants to do something there, Countersign shows you what it " +
			"wants to do and waits. Nothing happens until you approve it."},
	{"How do I get started?",
		"Open Getting started. It walks you through adding a server, signing in, connecting your AI app and trying a test call."},
	{"A call is waiting. What do I do?",
		"Read what the call will do and where, then press Approve or Deny. If you do nothing, the call is denied when its time runs out, " +
			"and your AI app is told so."},
	{"What does Pause do?",
		"While Countersign is paused, every call is denied at once without asking you. Press Resume to be asked again."},
	{"What happens if I quit?",
		"Calls that are waiting are denied, and your AI apps can't use the servers until Countersign runs again."},
	{"Where do I change things?",
		"In Settings: add or remove servers, sign in or out, choose what each server may touch (its allowlist), " +
			"how long a call waits, and whether Countersign starts when you log in."},
	{"Can I see what happened earlier?",
		"Audit lists every call, who decided it and when, and can check that the record has not been altered."},
	{"Something is wrong or a server is not listed.",
		"Your organisation decides which servers can be added. Ask your IT team; the README that came with Countersign has the technical details."},
}

// helpWindow answers common questions; there may be no internet, so the
// answers are in the app.
type helpWindow struct {
	d   *Desktop
	win fyne.Window
}

func (hw *helpWindow) show() {
	if hw.win == nil {
		d := hw.d
		box := container.NewVBox()
		for _, qa := range helpText {
			box.Add(heading(qa.q))
			box.Add(wrapped(qa.a))
		}
		hw.win = d.newWindow("Countersign: help", fyne.NewSize(600, 560))
		hw.win.SetContent(container.NewBorder(nil,
			container.NewVBox(widget.NewSeparator(), container.NewHBox(
				widget.NewButtonWithIcon("Getting started…", theme.NavigateNextIcon(), d.showGuide),
				widget.NewButtonWithIcon("Settings…", theme.SettingsIcon(), d.showSettings),
				layout.NewSpacer(),
				widget.NewButton("Close", func() { hw.win.Hide() }))),
			nil, nil, container.NewVScroll(box)))
	}
	hw.win.Show()
	hw.win.RequestFocus()
	hw.win.Content().Refresh()
}

// aboutText is the About window's text, with the version.
func aboutText() string {
	return "Version " + buildinfo.Version + "\n\n" +
		"Countersign keeps you in charge of what your AI apps do with your work tools: " +
		"each call waits for your approval, and every decision is kept in a tamper-evident record."
}

// aboutWindow names Countersign and its version.
type aboutWindow struct {
	d   *Desktop
	win fyne.Window
}

func (aw *aboutWindow) show() {
	if aw.win == nil {
		d := aw.d
		title := widget.NewLabel("Countersign")
		title.TextStyle.Bold = true
		title.SizeName = theme.SizeNameSubHeadingText
		icon := widget.NewIcon(d.app.Icon())
		aw.win = d.newWindow("About Countersign", fyne.NewSize(440, 260))
		aw.win.SetContent(container.NewBorder(
			container.NewBorder(nil, nil, container.NewGridWrap(fyne.NewSize(64, 64), icon), nil, title),
			container.NewHBox(
				widget.NewButtonWithIcon("Help", theme.HelpIcon(), d.showHelp),
				widget.NewButtonWithIcon("Settings…", theme.SettingsIcon(), d.showSettings),
				layout.NewSpacer(),
				widget.NewButton("Close", func() { aw.win.Hide() })),
			nil, nil, wrapped(aboutText())))
	}
	aw.win.Show()
	aw.win.RequestFocus()
	aw.win.Content().Refresh()
}

// setNoTray opens the main window when no tray shows Countersign's icon,
// and says why it is there; when a tray shows up later, the window stays
// but no longer says so.
func (d *Desktop) setNoTray(missing bool) {
	known := d.trayw.known
	d.trayw.known = true
	if known && missing == d.trayw.missing {
		return
	}
	d.trayw.missing = missing
	d.home.setNoTray(missing)
	if missing {
		d.log.Warn("no system tray shows Countersign's icon: opening its main window")
		d.home.show()
	}
}

// showFront is what launching Countersign again shows: the main window,
// and the review window in front of it when calls wait.
func (d *Desktop) showFront() {
	d.home.show()
	if d.review.waiting() > 0 {
		d.showReview()
	}
}

func (d *Desktop) showGuide() { d.guide.show() }
func (d *Desktop) showHelp()  { d.help.show() }
func (d *Desktop) showAbout() { d.about.show() }

// tick runs every second on the UI goroutine: ages and countdowns, and
// the marks of "Getting started" while it is open.
func (d *Desktop) tick() {
	d.review.tick()
	d.guide.tick()
	d.tray.exportTick()
}

// quitQuestion asks before quitting while n calls wait.
func quitQuestion(n int) string {
	if n == 1 {
		return "1 call is waiting for you. If you quit, it is denied."
	}
	return fmt.Sprintf("%d calls are waiting for you. If you quit, they are denied.", n)
}

// quit ends the app; Run returns and the core shuts down, denying every
// call still waiting. While calls wait it asks first, over the review
// window, which shows them.
func (d *Desktop) quit() {
	n := d.review.waiting()
	if n == 0 {
		d.app.Quit()
		return
	}
	if d.quitAsk != nil {
		d.showReview()
		return // already asking
	}
	d.showReview()
	msg := wrapped(quitQuestion(n))
	d.quitAsk = dialog.NewCustomConfirm("Quit Countersign?", "Quit and deny", "Keep running", msg, func(ok bool) {
		d.quitAsk = nil
		if ok {
			d.app.Quit()
		}
	}, d.review.window())
	d.quitAsk.Resize(fyne.NewSize(420, 180))
	d.quitAsk.Show()
}

// mainMenu is every window's menu bar: what the tray menu offers, for a
// desktop with no tray, and so that Settings is one click away from any
// window.
func (d *Desktop) mainMenu() *fyne.MainMenu {
	quit := fyne.NewMenuItem("Quit", d.quit) // asks first while calls wait
	quit.IsQuit = true
	return fyne.NewMainMenu(
		fyne.NewMenu("Countersign",
			fyne.NewMenuItem("Review…", d.showReview),
			fyne.NewMenuItem("Settings…", d.showSettings),
			fyne.NewMenuItem("Connect your AI app…", d.showConnect),
			fyne.NewMenuItem("Audit…", d.showAudit),
			fyne.NewMenuItemSeparator(),
			fyne.NewMenuItem("Main window", d.home.show),
			fyne.NewMenuItemSeparator(),
			quit),
		fyne.NewMenu("Help",
			fyne.NewMenuItem("Getting started…", d.showGuide),
			fyne.NewMenuItem("Help", d.showHelp),
			fyne.NewMenuItem("About Countersign", d.showAbout)),
	)
}
