package ui

import (
	"context"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/countersign/countersign/internal/app"
)

// guideIntro is what Countersign does for the person, in one paragraph.
const guideIntro = "Countersign stands between your AI apps and the work tools they use, such as GitHub or Jira. " +
	"Before an AI app creates, changes or reads anything there for you, Countersign shows you what it wants to do, " +
	"and nothing happens until you approve it. Four steps get you ready."

// guideTryText says how to try a test call.
const guideTryText = "Ask your AI app to do something small with the server you added, such as " +
	"\"list my open issues\". Countersign shows you the call: read it, then approve or deny it."

// guideReady says that every step is done.
const guideReady = "You're all set: from now on, every call your AI apps make waits here for you."

// allDone reports whether every step is done.
func allDone(steps []guideStep) bool {
	for _, s := range steps {
		if !s.Done {
			return false
		}
	}
	return true
}

// guidePoll is how many clock ticks pass between two looks at the state
// while "Getting started" is open: AI apps' files change behind its back.
const guidePoll = 3

// guideState is what the steps' marks are computed from, as last loaded.
type guideState struct {
	loaded  bool
	servers []app.ServerStatus
	// connected is set when an AI app's file has an entry that goes
	// through Countersign; connectWhy says why that can't be known.
	connected  bool
	connectWhy string
	// tried is set once the person approved or denied a call.
	tried bool
}

// guideStep is one step of "Getting started".
type guideStep struct {
	Title string
	Text  string
	Done  bool
	// Button is the action's label; Disabled says why it can't be used
	// yet, empty when it can.
	Button   string
	Disabled string
	action   func()
}

// steps works out the four steps and their marks from st.
func (g *guideWindow) steps(st guideState) []guideStep {
	d := g.d
	add := guideStep{
		Title:  "1. Add a server your organisation approves",
		Text:   "Choose the work tool your AI app should reach, such as GitHub, from the list your organisation allows.",
		Button: "Add a server…",
		action: g.addServer,
	}
	sign := guideStep{
		Title:  "2. Sign in",
		Text:   "Sign in to the server with your own account, in your browser. Countersign keeps the sign-in in your computer's keychain.",
		Button: "Sign in…",
		action: func() { d.showSettings() },
	}
	connect := guideStep{
		Title:  "3. Connect your AI app",
		Text:   "Let Countersign set up your AI app (such as VS Code or Claude Desktop) so that its calls come here first.",
		Button: "Connect your AI app…",
		action: d.showConnect,
	}
	try := guideStep{
		Title:  "4. Try a test call",
		Text:   guideTryText,
		Button: "Open the review window",
		action: d.showReview,
	}
	if !st.loaded {
		return []guideStep{add, sign, connect, try}
	}
	add.Done = len(st.servers) > 0
	switch {
	case len(st.servers) == 0:
		sign.Disabled = "Add a server first."
	default:
		sign.Done = true
		for _, srv := range st.servers {
			if srv.SignedIn || (srv.SignInUnavailable != "" && !srv.TakesToken) {
				continue // signed in, or nothing to sign in to
			}
			sign.Done = false
			sign.Button = "Sign in to " + oneLine(srv.Name, 30) + "…"
			sign.action = func() { g.signIn(srv) }
			break
		}
		if sign.Done {
			sign.Button = "Open Settings…"
		}
	}
	connect.Done = st.connected
	if st.connectWhy != "" {
		connect.Text += " " + st.connectWhy
	}
	try.Done = st.tried
	return []guideStep{add, sign, connect, try}
}

// guideWindow is "Getting started": what Countersign does, then the steps
// that make it useful, each marked done or not from the real state.
type guideWindow struct {
	d   *Desktop
	win fyne.Window

	content fyne.CanvasObject
	body    *fyne.Container
	visible bool
	state   guideState
	loading bool
	ticks   int
}

// newGuideWindow makes the window's state; its widgets are built when it
// first opens.
func newGuideWindow(d *Desktop) *guideWindow {
	return &guideWindow{d: d}
}

func (g *guideWindow) build() {
	d := g.d
	g.body = container.NewVBox()
	g.render()
	settings := widget.NewButtonWithIcon("Settings…", theme.SettingsIcon(), d.showSettings)
	help := widget.NewButtonWithIcon("Help", theme.HelpIcon(), d.showHelp)
	closeBtn := widget.NewButton("Close", func() { g.hide() })
	g.content = container.NewBorder(nil,
		container.NewVBox(widget.NewSeparator(), container.NewHBox(settings, help, layout.NewSpacer(), closeBtn)),
		nil, nil,
		container.NewVScroll(g.body))
}

func (g *guideWindow) window() fyne.Window {
	if g.win == nil {
		g.build()
		g.win = g.d.newWindow("Countersign: getting started", fyne.NewSize(640, 720))
		g.win.SetCloseIntercept(g.hide)
		g.win.SetContent(g.content)
	}
	return g.win
}

// show opens "Getting started" and looks at the state afresh.
func (g *guideWindow) show() {
	w := g.window()
	g.visible = true
	w.Show()
	w.RequestFocus()
	g.reload()
}

func (g *guideWindow) hide() {
	g.visible = false
	if g.win != nil {
		g.win.Hide()
	}
}

// tick looks at the state again every guidePoll ticks while the window is
// open.
func (g *guideWindow) tick() {
	if !g.visible {
		return
	}
	if g.ticks++; g.ticks%guidePoll == 0 {
		g.reload()
	}
}

// reload reads the servers, the AI apps' files and the audit log off the
// UI goroutine, then redraws the steps.
func (g *guideWindow) reload() {
	if g.loading {
		return
	}
	g.loading = true
	d := g.d
	d.background(func(ctx context.Context) func() {
		st := loadGuideState(ctx, d.o)
		return func() {
			g.loading = false
			g.state = st
			g.render()
		}
	})
}

// loadGuideState reads what the marks depend on. A source that fails
// leaves its step not done.
func loadGuideState(ctx context.Context, o Options) guideState {
	st := guideState{loaded: true}
	if servers, err := o.Settings.Servers(ctx); err == nil {
		st.servers = servers
	}
	if o.Connect == nil {
		st.connectWhy = "Connecting AI apps is not available in this version."
	} else if ov, err := o.Connect.Overview(ctx); err == nil {
		for _, h := range ov.Hosts {
			if len(h.Connected) > 0 {
				st.connected = true
			}
		}
	}
	st.tried = personDecided(ctx, o.Audit)
	return st
}

// personDecided reports whether the audit log holds a call the person
// approved or denied, among the newest decisions.
func personDecided(ctx context.Context, a AuditService) bool {
	var before int64
	for range 5 { // up to 1,000 decisions: timeouts alone don't fill that
		page, err := a.Query(ctx, app.AuditFilter{Events: app.Decisions}, before, 200)
		if err != nil {
			return false
		}
		for _, e := range page.Events {
			if e.Actor == "person" {
				return true
			}
		}
		if page.Next == 0 {
			return false
		}
		before = page.Next
	}
	return false
}

// render lays out the steps with their marks.
func (g *guideWindow) render() {
	objs := []fyne.CanvasObject{wrapped(guideIntro), widget.NewSeparator()}
	steps := g.steps(g.state)
	if allDone(steps) {
		ready := wrapped(guideReady)
		ready.TextStyle.Bold = true
		ready.Importance = widget.SuccessImportance
		objs = []fyne.CanvasObject{wrapped(guideIntro), ready, widget.NewSeparator()}
	}
	next := true // the first step to do gets the prominent button
	for _, s := range steps {
		first := next && !s.Done && s.Disabled == ""
		if first {
			next = false
		}
		objs = append(objs, guideRow(s, g.state.loaded, first), widget.NewSeparator())
	}
	g.body.Objects = objs
	g.body.Refresh()
	if g.win != nil {
		// Wrapped text knows its height only once laid out at its width.
		g.win.Content().Refresh()
	}
}

// guideRow is one step: its mark, title, text and button, prominent when
// it is the next thing to do.
func guideRow(s guideStep, known, next bool) fyne.CanvasObject {
	mark := widget.NewIcon(theme.RadioButtonIcon())
	state := widget.NewLabel("To do")
	switch {
	case !known:
		state.SetText("Checking…")
		state.Importance = widget.LowImportance
	case s.Done:
		mark.SetResource(theme.NewSuccessThemedResource(theme.ConfirmIcon()))
		state.SetText("Done")
		state.Importance = widget.SuccessImportance
	}
	title := heading(s.Title)
	btn := widget.NewButton(s.Button, s.action)
	if next && known {
		btn.Importance = widget.HighImportance
	}
	right := []fyne.CanvasObject{wrapped(s.Text)}
	if s.Disabled != "" {
		btn.Disable()
		right = append(right, lowText(s.Disabled))
	}
	right = append(right, container.NewHBox(btn))
	head := container.NewBorder(nil, nil, mark, state, title)
	return container.NewVBox(head, container.NewPadded(container.NewVBox(right...)))
}

// addServer opens Settings on the catalog of servers that can be added.
func (g *guideWindow) addServer() {
	s := g.d.settings
	g.d.showSettings()
	s.tabs.SelectIndex(0)
	s.adding.open()
}

// signIn opens Settings and signs in to srv: in the browser, or by asking
// for its token.
func (g *guideWindow) signIn(srv app.ServerStatus) {
	s := g.d.settings
	g.d.showSettings()
	s.tabs.SelectIndex(0)
	if srv.TakesToken {
		s.askToken(srv)
		return
	}
	s.sign(srv.ID, true)
}
