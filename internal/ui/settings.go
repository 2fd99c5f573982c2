package ui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/countersign/countersign/internal/app"
)

// settingsWindow shows the servers and their sign-in, the allowlist of each
// server, the approval timeout and start at login. Every change is saved
// by the settings service at once, off the UI goroutine.
type settingsWindow struct {
	d   *Desktop
	win fyne.Window

	content fyne.CanvasObject
	tabs    *container.AppTabs
	status  *widget.Label // the outcome of the last change, or a load error
	// statusTab is the tab the status speaks of: it shows only there, so
	// a message never follows the person onto another tab or form.
	statusTab int

	// notes are the servers' own messages, shown on their cards: a
	// sign-in under way, its outcome, and the technical detail of a
	// failure behind a toggle. By server id.
	notes map[string]cardNote

	// readMu and readSeq number the reads of the servers' states in the
	// order they were made; shownSeq is the newest one shown (UI
	// goroutine). An older read arriving late is dropped, so a row never
	// goes back to "Signing in…" after the sign-in ended.
	readMu   sync.Mutex
	readSeq  uint64
	shownSeq uint64

	servers     []app.ServerStatus
	serverBox   *fyne.Container
	serverList  fyne.CanvasObject // the Servers tab's list view
	adding      *addServer        // the Servers tab's add view
	serverPick  *widget.Select
	allowServer string // the server whose allowlist is shown
	allow       app.Allowlist
	allowBox    *fyne.Container
	allowEntry  *widget.Entry
	allowKind   *widget.Select // what the entry names, when the list holds several kinds
	allowCheck  *widget.Label
	allowAdd    *widget.Button

	timeout      app.TimeoutSetting
	timeoutPick  *widget.Select // the choices of timeoutChoices, in words
	timeoutCheck *widget.Label
	login        *widget.Check
	loginWhy     *widget.Label
	loading      bool // widgets are being set from loaded values

	// outside shows a change made to the settings file outside
	// Countersign while it waits for the person; hidden otherwise.
	outside     *fyne.Container
	pending     app.SettingsChange
	havePending bool
	shownID     uint64 // the last change that opened the window
}

// cardNote is a message on a server's card.
type cardNote struct {
	text   string
	detail string // technical detail, behind "Technical details"; may be empty
	open   bool   // the detail is shown
	imp    widget.Importance
}

// newSettingsWindow makes the window's state; its widgets are built when
// it first opens.
func newSettingsWindow(d *Desktop) *settingsWindow {
	return &settingsWindow{d: d, notes: map[string]cardNote{}}
}

func (s *settingsWindow) build() {
	s.status = wrapped("")
	s.serverBox = container.NewVBox(wrapped("Loading…"))
	s.adding = newAddServer(s)
	addButton := widget.NewButtonWithIcon("Add a server…", theme.ContentAddIcon(), s.adding.open)
	connect := widget.NewButtonWithIcon("Connect your AI app…", theme.ComputerIcon(), s.d.showConnect)
	s.serverList = container.NewBorder(
		container.NewVBox(container.NewHBox(addButton, connect), widget.NewSeparator()), nil, nil, nil,
		container.NewVScroll(s.serverBox))
	s.adding.view.Hide()

	s.serverPick = widget.NewSelect(nil, func(string) {
		if s.loading {
			return
		}
		s.loadAllowlist(s.pickedServer())
	})
	s.serverPick.PlaceHolder = "Choose a server"
	s.allowBox = container.NewVBox()
	s.allowEntry = widget.NewEntry()
	s.allowKind = widget.NewSelect(nil, func(string) {
		s.setAllowHint()
		s.checkEntry(s.allowEntry.Text)
	})
	s.allowKind.Hide()
	s.allowCheck = wrapped("")
	s.allowAdd = widget.NewButtonWithIcon("Add", theme.ContentAddIcon(), s.addEntry)
	s.allowEntry.OnChanged = s.checkEntry
	s.allowEntry.OnSubmitted = func(string) { s.addEntry() }
	allowTab := container.NewBorder(
		container.NewVBox(
			wrapped("Calls may only touch what a server's allowlist names. Entries set by your organisation are locked."),
			container.NewBorder(nil, nil, widget.NewLabel("Server"), nil, s.serverPick)),
		container.NewVBox(widget.NewSeparator(),
			container.NewBorder(nil, nil, s.allowKind, s.allowAdd, s.allowEntry), s.allowCheck),
		nil, nil, container.NewVScroll(s.allowBox))

	s.timeoutPick = widget.NewSelect(nil, func(string) {
		if !s.loading {
			s.saveTimeout()
		}
	})
	s.timeoutCheck = wrapped("")
	s.login = widget.NewCheck("Start Countersign when I log in", func(on bool) {
		if !s.loading {
			s.setLogin(on)
		}
	})
	s.loginWhy = wrapped("")
	general := container.NewVBox(
		heading("Approval timeout"),
		wrapped("A call nobody decides within this time is denied, and the AI app is told so."),
		container.NewBorder(nil, nil, widget.NewLabel("Wait for"), nil, s.timeoutPick),
		s.timeoutCheck,
		widget.NewSeparator(),
		heading("Start at login"),
		s.login, s.loginWhy,
	)

	s.tabs = container.NewAppTabs(
		container.NewTabItem("Servers", container.NewStack(s.serverList, s.adding.view)),
		container.NewTabItem("Allowlists", allowTab),
		container.NewTabItem("General", general),
	)
	s.tabs.OnSelected = func(*container.TabItem) { s.showStatusOnItsTab() }
	s.outside = container.NewVBox()
	s.outside.Hide()
	s.content = container.NewBorder(s.outside, s.status, nil, nil, s.tabs)
	s.showPending()
}

// showStatusOnItsTab shows the status only on the tab it speaks of.
func (s *settingsWindow) showStatusOnItsTab() {
	if s.tabs.SelectedIndex() == s.statusTab && s.status.Text != "" {
		s.status.Show()
	} else {
		s.status.Hide()
	}
}

// setPending shows the change made to the settings file outside
// Countersign that waits for the person (ok), or hides the panel. It
// reports whether the change is one the window has not been opened for.
func (s *settingsWindow) setPending(c app.SettingsChange, ok bool) bool {
	s.pending, s.havePending = c, ok
	if s.content != nil {
		s.showPending()
	}
	if !ok || c.ID == s.shownID {
		return false
	}
	s.shownID = c.ID
	return true
}

// showPending shows the waiting change in the window, or hides the panel.
func (s *settingsWindow) showPending() {
	c := s.pending
	if !s.havePending {
		s.outside.Objects = nil
		s.outside.Hide()
		s.outside.Refresh()
		return
	}
	title := heading("Settings were changed outside Countersign")
	title.Importance = widget.WarningImportance
	intro := wrapped("A program on this computer changed your settings file. Your current settings stay in force until you choose:")
	lines := container.NewVBox()
	// Every line that widens shows, first and whole: a change cannot hide
	// one behind narrowing lines or past the cut of a long line. Only
	// narrowing lines beyond the first few are folded into "and N more".
	const most = 8
	ordered := slices.Clone(c.Changes)
	slices.SortStableFunc(ordered, func(a, b app.SettingsChangeLine) int {
		switch {
		case a.Widens == b.Widens:
			return 0
		case a.Widens:
			return -1
		}
		return 1
	})
	for i, line := range ordered {
		if i >= most && !line.Widens {
			lines.Add(wrapped(fmt.Sprintf("and %d more that only narrow", len(ordered)-i)))
			break
		}
		limit := 200
		if line.Widens {
			limit = 2000
		}
		text := "• " + oneLine(line.Text, limit)
		if line.Widens {
			text += " (allows more)"
		}
		l := wrapped(text)
		if line.Widens {
			l.Importance = widget.WarningImportance
		}
		lines.Add(l)
	}
	id := c.ID
	apply := widget.NewButton("Apply these changes", func() { s.answerPending(id, true) })
	keep := widget.NewButton("Keep my current settings", func() { s.answerPending(id, false) })
	keep.Importance = widget.HighImportance
	s.outside.Objects = []fyne.CanvasObject{
		container.NewBorder(nil, nil, widget.NewIcon(theme.WarningIcon()), nil, title),
		intro, lines,
		container.NewHBox(keep, apply),
		widget.NewSeparator(),
	}
	s.outside.Show()
	s.outside.Refresh()
}

// answerPending applies or refuses the change the person was shown.
func (s *settingsWindow) answerPending(id uint64, apply bool) {
	svc := s.d.o.Settings
	busy, done := "Keeping your current settings…", "Kept your current settings: the settings file has them again."
	if apply {
		busy, done = "Applying the changes…", "Applied the changes made outside Countersign."
	}
	s.setStatus(busy, widget.MediumImportance)
	s.d.background(func(ctx context.Context) func() {
		var err error
		if apply {
			err = svc.ApplyOutsideChange(ctx, id)
		} else {
			err = svc.KeepCurrentSettings(ctx, id)
		}
		c, ok := svc.PendingChange(ctx)
		return func() {
			if err != nil {
				s.setStatus(err.Error(), widget.DangerImportance)
			} else {
				s.setStatus(done, widget.SuccessImportance)
			}
			s.setPending(c, ok)
			s.d.tray.setSettingsChange(ok)
			s.reload()
		}
	})
}

func (s *settingsWindow) window() fyne.Window {
	if s.win == nil {
		s.build()
		s.win = s.d.newWindow("Countersign: settings", fyne.NewSize(760, 560))
		s.win.SetContent(s.content)
	}
	return s.win
}

// show opens the window and loads the current settings.
func (s *settingsWindow) show() {
	w := s.window()
	w.Show()
	w.RequestFocus()
	s.reload()
}

// showAdding switches the Servers tab between the list and the add panel.
func (s *settingsWindow) showAdding(on bool) {
	s.setStatus("", widget.MediumImportance) // the message was about the other view
	if on {
		s.serverList.Hide()
		s.adding.view.Show()
		return
	}
	s.adding.view.Hide()
	s.serverList.Show()
}

func (s *settingsWindow) setStatus(text string, imp widget.Importance) {
	s.status.Importance = imp
	s.status.SetText(text)
	s.statusTab = s.tabs.SelectedIndex()
	s.showStatusOnItsTab()
}

// readServers reads the servers' states, numbered in the order read.
func (s *settingsWindow) readServers(ctx context.Context) ([]app.ServerStatus, uint64, error) {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	s.readSeq++
	servers, err := s.d.o.Settings.Servers(ctx)
	return servers, s.readSeq, err
}

// fresh reports whether the read numbered seq is newer than the states
// shown, and if so takes it as the one shown. UI goroutine only.
func (s *settingsWindow) fresh(seq uint64) bool {
	if seq < s.shownSeq {
		return false
	}
	s.shownSeq = seq
	return true
}

// reload fetches everything the window shows.
func (s *settingsWindow) reload() {
	svc := s.d.o.Settings
	s.d.background(func(ctx context.Context) func() {
		servers, seq, err := s.readServers(ctx)
		timeout, terr := svc.Timeout(ctx)
		login, lerr := svc.StartAtLogin(ctx)
		return func() {
			s.loading = true
			defer func() { s.loading = false }()
			if err != nil {
				s.setStatus("Could not load the servers: "+err.Error(), widget.DangerImportance)
				servers = nil
			}
			if err != nil || s.fresh(seq) {
				s.setServers(servers)
			}
			if terr != nil {
				s.setStatus("Could not load the timeout: "+terr.Error(), widget.DangerImportance)
			} else {
				s.setTimeout(timeout)
			}
			if lerr != nil {
				login = app.LoginSetting{Unavailable: lerr.Error()}
			}
			s.setLoginSetting(login)
		}
	})
}

// setServers lays out the server list and fills the allowlist picker.
func (s *settingsWindow) setServers(servers []app.ServerStatus) {
	s.setServerCards(servers)
	if len(servers) == 0 {
		s.serverPick.Options = nil
		s.serverPick.Refresh()
		s.setAllowlist("", app.Allowlist{Unavailable: "There are no servers to set an allowlist for."})
		return
	}
	names := make([]string, len(servers))
	for i, srv := range servers {
		names[i] = s.pickName(srv)
	}
	s.serverPick.Options = names
	current := s.allowServer
	if current == "" || s.indexOf(current) < 0 {
		current = servers[0].ID
	}
	s.serverPick.SetSelected(s.pickName(servers[s.indexOf(current)]))
	s.loadAllowlist(current)
}

// setServerCards shows the servers' states: the cards of the Servers tab
// and the tray. It leaves the allowlist tab alone, so it can follow a
// sign-in that changes while the person types there.
func (s *settingsWindow) setServerCards(servers []app.ServerStatus) {
	s.servers = servers
	s.d.tray.setServers(servers)
	if len(servers) == 0 {
		s.serverBox.Objects = []fyne.CanvasObject{wrapped("No servers are set up yet. Add one from the catalog with Add a server.")}
		s.serverBox.Refresh()
		return
	}
	var objs []fyne.CanvasObject
	for _, srv := range servers {
		objs = append(objs, s.serverCard(srv), widget.NewSeparator())
	}
	s.serverBox.Objects = objs
	s.serverBox.Refresh()
}

// pickName is a server as the allowlist picker names it: its display
// name, made unique by a number when two servers share one.
func (s *settingsWindow) pickName(srv app.ServerStatus) string {
	name := oneLine(srv.Name, 40)
	n, nth := 0, 0
	for _, o := range s.servers {
		if oneLine(o.Name, 40) == name {
			n++
			if o.ID == srv.ID {
				nth = n
			}
		}
	}
	if n > 1 {
		name += fmt.Sprintf(" (%d)", nth)
	}
	return name
}

func (s *settingsWindow) indexOf(id string) int {
	for i, srv := range s.servers {
		if srv.ID == id {
			return i
		}
	}
	return -1
}

func (s *settingsWindow) pickedServer() string {
	for _, srv := range s.servers {
		if s.pickName(srv) == s.serverPick.Selected {
			return srv.ID
		}
	}
	return ""
}

// serverCard is one server: name, how it is reached, its state and the
// sign-in buttons (disabled, with the reason, when sign-in cannot be used).
func (s *settingsWindow) serverCard(srv app.ServerStatus) fyne.CanvasObject {
	name := heading(oneLine(srv.Name, 60))
	state := oneLine(srv.State, 600)
	if len(srv.Scopes) > 0 {
		state += " · scopes: " + oneLine(strings.Join(srv.Scopes, " "), 200)
	}
	id := srv.ID
	if n, ok := s.notes[id]; ok && n.imp == widget.DangerImportance && n.text != "" {
		state = strings.Replace(state, ": "+n.text, "", 1) // the note below says it; once is enough
	}
	signIn := widget.NewButton("Sign in", func() { s.sign(id, true) })
	if srv.TakesToken {
		signIn = widget.NewButton("Enter token…", func() { s.askToken(srv) })
	}
	if srv.NeedsSignIn {
		signIn.Importance = widget.HighImportance
	}
	signOut := widget.NewButton("Sign out", func() { s.sign(id, false) })
	switch {
	case srv.SignInUnavailable != "":
		signIn.Disable()
		signOut.Disable()
	case srv.SignedIn:
		signIn.Disable()
	default:
		signOut.Disable()
	}
	remove := widget.NewButtonWithIcon("Remove", theme.DeleteIcon(), func() { s.confirmRemove(srv) })
	stateLabel := wrapped(state)
	if srv.NeedsSignIn {
		stateLabel.Importance = widget.WarningImportance
	}
	objs := []fyne.CanvasObject{name, stateLabel, container.NewHBox(signIn, signOut, layout.NewSpacer(), remove)}
	if srv.Role != "" {
		objs = append(objs, lowText(oneLine(srv.Role, 200)))
	}
	if b := s.awsRoleButton(srv); b != nil {
		objs = append(objs, container.NewHBox(b))
	}
	if n, ok := s.notes[id]; ok {
		objs = append(objs, noteWithDetail(n, func() {
			n.open = !n.open
			s.setNote(id, n)
		}))
	}
	if srv.SignInUnavailable != "" {
		objs = append(objs, container.NewBorder(nil, nil, widget.NewIcon(theme.InfoIcon()), nil, wrapped(srv.SignInUnavailable)))
	}
	if srv.Locked != "" {
		objs = append(objs, container.NewBorder(nil, nil, widget.NewIcon(theme.WarningIcon()), nil, wrapped(srv.Locked)))
	}
	return container.NewVBox(objs...)
}

// noteWithDetail is a card's message, with its technical detail behind a
// "Technical details" toggle, which calls toggle.
func noteWithDetail(n cardNote, toggle func()) fyne.CanvasObject {
	l := wrapped(n.text)
	l.Importance = n.imp
	if n.detail == "" {
		return l
	}
	label, icon := "Technical details", theme.MenuDropDownIcon()
	if n.open {
		label, icon = "Hide technical details", theme.MenuDropUpIcon()
	}
	b := widget.NewButtonWithIcon(label, icon, toggle)
	b.Importance = widget.LowImportance
	objs := []fyne.CanvasObject{l, container.NewHBox(b)}
	if n.open {
		// Broken into lines here: a wrapped label in a list of cards is
		// given too little height and overlaps the card below.
		detail := widget.NewLabel(hardWrap(visible(n.detail), 80))
		detail.TextStyle.Monospace = true
		detail.Selectable = true
		objs = append(objs, detail)
	}
	return container.NewVBox(objs...)
}

// hardWrap breaks s into lines of at most width runes.
func hardWrap(s string, width int) string {
	var b strings.Builder
	for i, line := range strings.Split(s, "\n") {
		if i > 0 {
			b.WriteByte('\n')
		}
		r := []rune(line)
		for len(r) > width {
			b.WriteString(string(r[:width]))
			b.WriteByte('\n')
			r = r[width:]
		}
		b.WriteString(string(r))
	}
	return b.String()
}

// sign signs in to or out of a server; it may open a browser and wait for
// the person, so it runs in the background.
func (s *settingsWindow) sign(id string, in bool) {
	svc := s.d.o.Settings
	name := id
	if i := s.indexOf(id); i >= 0 {
		name = oneLine(s.servers[i].Name, 60)
	}
	if in {
		s.serverAction(id, "Signing in to "+name+"… Finish in the browser window that opens.", "", "Signed in to "+name+".",
			func(ctx context.Context) error { return svc.SignIn(ctx, id) })
	} else {
		s.serverAction(id, "Signing out of "+name+"…", "", "Signed out of "+name+".",
			func(ctx context.Context) error { return svc.SignOut(ctx, id) })
	}
}

// serverAction runs work on the server id in the background with busy on
// its card, then shows there done or the error (after failed) and the
// servers' new states. The message stays with its server: another
// server's outcome never takes its place.
func (s *settingsWindow) serverAction(id, busy, failed, done string, work func(ctx context.Context) error) {
	s.setNote(id, cardNote{text: busy, imp: widget.MediumImportance})
	s.d.background(func(ctx context.Context) func() {
		err := work(ctx)
		servers, seq, lerr := s.readServers(ctx)
		return func() {
			if err != nil {
				n := cardNote{text: failed + err.Error(), imp: widget.DangerImportance}
				var p *app.Problem
				if errors.As(err, &p) {
					n.detail = p.Detail
				}
				s.notes[id] = n
			} else {
				s.notes[id] = cardNote{text: done, imp: widget.SuccessImportance}
			}
			if lerr == nil && s.fresh(seq) {
				s.loading = true
				s.setServers(servers)
				s.loading = false
			} else {
				s.setServerCards(s.servers)
			}
			if s.indexOf(id) < 0 { // removed: its card is gone, so the window says it
				delete(s.notes, id)
				if err != nil {
					s.setStatus(failed+err.Error(), widget.DangerImportance)
				} else {
					s.setStatus(done, widget.SuccessImportance)
				}
			}
		}
	})
}

// setNote shows a message on a server's card.
func (s *settingsWindow) setNote(id string, n cardNote) {
	s.notes[id] = n
	s.setServerCards(s.servers)
}

// askToken asks for the access token of a server that takes one instead of
// a browser sign-in. The token goes straight to the settings service, which
// keeps it in the keychain; the window keeps no copy.
func (s *settingsWindow) askToken(srv app.ServerStatus) {
	entry := widget.NewPasswordEntry()
	entry.SetPlaceHolder("Paste the token")
	entry.Validator = func(text string) error {
		if strings.TrimSpace(text) == "" {
			return errors.New("paste the token first")
		}
		return nil
	}
	note := wrapped("Countersign tries the token with " + oneLine(srv.Name, 40) + " before keeping it. Your organisation " +
		"prefers browser sign-in, so using a token is noted in the audit log. The token is kept safely on this computer, never in a file.")
	items := []*widget.FormItem{widget.NewFormItem("Token", entry), widget.NewFormItem("", note)}
	d := dialog.NewForm("Access token for "+oneLine(srv.Name, 40), "Save", "Cancel", items, func(ok bool) {
		token := entry.Text
		entry.SetText("")
		if ok {
			s.saveToken(srv, token)
		}
	}, s.window())
	d.Resize(fyne.NewSize(520, 240))
	d.Show()
}

// saveToken hands a pasted token to the settings service.
func (s *settingsWindow) saveToken(srv app.ServerStatus, token string) {
	svc := s.d.o.Settings
	id, name := srv.ID, oneLine(srv.Name, 60)
	s.serverAction(id, "Checking the token with "+name+"…", "Token not saved: ", "Signed in to "+name+" with your token.",
		func(ctx context.Context) error { return svc.SetToken(ctx, id, token) })
}

// confirmRemove asks before a server is removed.
func (s *settingsWindow) confirmRemove(srv app.ServerStatus) {
	msg := "Remove " + oneLine(srv.Name, 40) + "? Your AI apps can no longer reach it through Countersign, " +
		"and its sign-in is forgotten. Its audit history stays."
	dialog.ShowConfirm("Remove server", msg, func(ok bool) {
		if ok {
			s.remove(srv.ID, oneLine(srv.Name, 60))
		}
	}, s.window())
}

func (s *settingsWindow) remove(id, name string) {
	svc := s.d.o.Settings
	s.serverAction(id, "Removing "+name+"…", "", "Removed "+name+".", func(ctx context.Context) error { return svc.RemoveServer(ctx, id) })
}

func (s *settingsWindow) loadAllowlist(id string) {
	if id == "" {
		return
	}
	svc := s.d.o.Settings
	s.d.background(func(ctx context.Context) func() {
		al, err := svc.Allowlist(ctx, id)
		return func() {
			if s.pickedServer() != id {
				return // the person chose another server meanwhile: its own load shows it
			}
			if err != nil {
				al = app.Allowlist{Unavailable: err.Error()}
			}
			s.setAllowlist(id, al)
		}
	})
}

// setAllowlist shows a server's allowlist: each entry with Remove, or a
// lock when the organisation set it.
func (s *settingsWindow) setAllowlist(id string, al app.Allowlist) {
	s.allowServer, s.allow = id, al
	editable := al.Unavailable == ""
	var objs []fyne.CanvasObject
	if !editable {
		objs = append(objs, container.NewBorder(nil, nil, widget.NewIcon(theme.InfoIcon()), nil, wrapped(al.Unavailable)))
	} else if len(al.Entries) == 0 {
		objs = append(objs, wrapped("Nothing is allowed yet: calls to this server that touch a "+
			"repository or project are denied until you add one."))
	}
	for _, e := range al.Entries {
		pattern := oneLine(s.shownEntry(e.Pattern), 200)
		var action fyne.CanvasObject
		if e.Locked {
			lock := widget.NewLabel("Locked: set by your organisation")
			lock.Importance = widget.LowImportance
			action = lock
		} else {
			p := e.Pattern
			rm := widget.NewButtonWithIcon("Remove", theme.DeleteIcon(), func() { s.removeEntry(p) })
			if !editable {
				rm.Disable()
			}
			action = rm
		}
		objs = append(objs, container.NewBorder(nil, nil, nil, action, widget.NewLabel(pattern)))
	}
	s.allowBox.Objects = objs
	s.allowBox.Refresh()
	if len(al.Kinds) > 0 {
		var nouns []string
		for _, k := range al.Kinds {
			nouns = append(nouns, k.Noun)
		}
		s.allowKind.Options = nouns
		if !slices.Contains(nouns, s.allowKind.Selected) {
			s.allowKind.Selected = nouns[0]
		}
		s.allowKind.Refresh()
		s.allowKind.Show()
	} else {
		s.allowKind.Hide()
	}
	s.setAllowHint()
	if editable {
		s.allowEntry.Enable()
	} else {
		s.allowEntry.Disable()
	}
	s.allowEntry.SetText("")
	s.checkEntry("")
}

// allowKindPicked is the kind chosen for a new entry of a list that holds
// several; ok is false for a list of one kind.
func (s *settingsWindow) allowKindPicked() (app.AllowKind, bool) {
	for _, k := range s.allow.Kinds {
		if k.Noun == s.allowKind.Selected {
			return k, true
		}
	}
	return app.AllowKind{}, false
}

// setAllowHint puts a short example in the entry, for the kind chosen.
func (s *settingsWindow) setAllowHint() {
	if k, ok := s.allowKindPicked(); ok {
		s.allowEntry.SetPlaceHolder("e.g. " + k.Example)
		return
	}
	if s.allow.Example != "" {
		s.allowEntry.SetPlaceHolder("e.g. " + s.allow.Example)
	} else {
		s.allowEntry.SetPlaceHolder("")
	}
}

// typedEntry is the entry as the settings service takes it: with the
// chosen kind's prefix when the list holds several kinds.
func (s *settingsWindow) typedEntry(text string) string {
	p := strings.TrimSpace(text)
	k, ok := s.allowKindPicked()
	if !ok || p == "" {
		return p
	}
	for _, other := range s.allow.Kinds {
		if strings.HasPrefix(strings.ToLower(p), other.Prefix+":") {
			return p // written with its prefix already
		}
	}
	return k.Prefix + ":" + p
}

// shownEntry is an entry as the list shows it: "FFC (Jira project)"
// rather than "jira:FFC".
func (s *settingsWindow) shownEntry(pattern string) string {
	for _, k := range s.allow.Kinds {
		if rest, ok := strings.CutPrefix(pattern, k.Prefix+":"); ok {
			return rest + " (" + k.Noun + ")"
		}
	}
	return pattern
}

// checkEntry validates a new allowlist entry as it is typed.
func (s *settingsWindow) checkEntry(text string) {
	s.allowAdd.Disable()
	switch {
	case s.allow.Unavailable != "":
		s.allowCheck.SetText("")
		return
	case strings.TrimSpace(text) == "":
		s.allowCheck.Importance = widget.LowImportance
		s.allowCheck.SetText("Type an entry to add it.")
		return
	}
	p := s.typedEntry(text)
	for _, e := range s.allow.Entries {
		if e.Pattern == p {
			s.allowCheck.Importance = widget.WarningImportance
			s.allowCheck.SetText("Already in the list.")
			return
		}
	}
	if err := s.d.o.Settings.CheckAllowEntry(s.allowServer, p); err != nil {
		s.allowCheck.Importance = widget.DangerImportance
		s.allowCheck.SetText(err.Error())
		return
	}
	s.allowCheck.Importance = widget.SuccessImportance
	s.allowCheck.SetText("Looks right: press Add or Enter.")
	s.allowAdd.Enable()
}

func (s *settingsWindow) addEntry() {
	if s.allowAdd.Disabled() {
		return
	}
	p := s.typedEntry(s.allowEntry.Text)
	s.saveAllowlist(append(s.ownEntries(), p), "Added "+s.shownEntry(p)+".")
}

func (s *settingsWindow) removeEntry(p string) {
	var keep []string
	for _, e := range s.ownEntries() {
		if e != p {
			keep = append(keep, e)
		}
	}
	s.saveAllowlist(keep, "Removed "+s.shownEntry(p)+".")
}

// ownEntries are the entries the person may change.
func (s *settingsWindow) ownEntries() []string {
	var out []string
	for _, e := range s.allow.Entries {
		if !e.Locked {
			out = append(out, e.Pattern)
		}
	}
	return out
}

func (s *settingsWindow) saveAllowlist(patterns []string, done string) {
	id := s.allowServer
	svc := s.d.o.Settings
	s.allowAdd.Disable()
	s.d.background(func(ctx context.Context) func() {
		err := svc.SetAllowlist(ctx, id, patterns)
		al, lerr := svc.Allowlist(ctx, id)
		return func() {
			if err != nil {
				s.setStatus("Not saved: "+err.Error(), widget.DangerImportance)
			} else {
				s.setStatus(done+" Saved.", widget.SuccessImportance)
			}
			if lerr != nil {
				al = app.Allowlist{Unavailable: lerr.Error()}
			}
			if id == s.allowServer {
				s.setAllowlist(id, al)
			}
		}
	})
}

// timeoutChoices are the approval timeouts offered.
var timeoutChoices = []time.Duration{
	30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute,
	30 * time.Minute, time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour, 24 * time.Hour,
}

// longDuration writes a timeout in words: "90 seconds", "5 minutes",
// "1 hour 30 minutes".
func longDuration(d time.Duration) string {
	unit := func(n int64, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %ss", n, one)
	}
	h, m, sec := int64(d/time.Hour), int64(d%time.Hour/time.Minute), int64(d%time.Minute/time.Second)
	var parts []string
	if h > 0 {
		parts = append(parts, unit(h, "hour"))
	}
	if m > 0 {
		parts = append(parts, unit(m, "minute"))
	}
	if sec > 0 || len(parts) == 0 {
		parts = append(parts, unit(sec, "second"))
	}
	return strings.Join(parts, " ")
}

// timeoutOptions are the choices within t's bounds, with t's value among
// them even when it is not one of the usual ones.
func timeoutOptions(t app.TimeoutSetting) []time.Duration {
	var out []time.Duration
	for _, d := range timeoutChoices {
		if (t.Min == 0 || d >= t.Min) && (t.Max == 0 || d <= t.Max) {
			out = append(out, d)
		}
	}
	if t.Value > 0 && !slices.Contains(out, t.Value) {
		out = append(out, t.Value)
		slices.Sort(out)
	}
	return out
}

func (s *settingsWindow) setTimeout(t app.TimeoutSetting) {
	s.timeout = t
	var words []string
	for _, d := range timeoutOptions(t) {
		words = append(words, longDuration(d))
	}
	was := s.loading
	s.loading = true
	s.timeoutPick.Options = words
	s.timeoutPick.SetSelected(longDuration(t.Value))
	s.loading = was
	if t.Locked != "" {
		s.timeoutPick.Disable()
		s.timeoutCheck.Importance = widget.LowImportance
		s.timeoutCheck.SetText(t.Locked)
		return
	}
	s.timeoutPick.Enable()
	s.timeoutCheck.Importance = widget.LowImportance
	s.timeoutCheck.SetText("Calls arriving from now on wait this long; changes are saved at once.")
}

// pickedTimeout is the timeout chosen in the list.
func (s *settingsWindow) pickedTimeout() (time.Duration, bool) {
	for _, d := range timeoutOptions(s.timeout) {
		if longDuration(d) == s.timeoutPick.Selected {
			return d, true
		}
	}
	return 0, false
}

func (s *settingsWindow) saveTimeout() {
	d, ok := s.pickedTimeout()
	if !ok || d == s.timeout.Value || s.timeout.Locked != "" {
		return
	}
	s.timeoutPick.Disable()
	svc := s.d.o.Settings
	s.d.background(func(ctx context.Context) func() {
		err := svc.SetTimeout(ctx, d)
		t, terr := svc.Timeout(ctx)
		return func() {
			if err != nil {
				s.setStatus("Timeout not saved: "+err.Error(), widget.DangerImportance)
			} else {
				s.setStatus("Saved: calls now wait "+longDuration(d)+" for a decision.", widget.SuccessImportance)
			}
			if terr != nil {
				t = s.timeout
			}
			s.setTimeout(t)
		}
	})
}

func (s *settingsWindow) setLoginSetting(l app.LoginSetting) {
	s.loading = true
	s.login.SetChecked(l.On)
	s.loading = false
	if l.Unavailable != "" {
		s.login.Disable()
		s.loginWhy.SetText(l.Unavailable)
		s.loginWhy.Show()
		return
	}
	s.login.Enable()
	s.loginWhy.SetText("")
	s.loginWhy.Hide()
}

func (s *settingsWindow) setLogin(on bool) {
	svc := s.d.o.Settings
	s.login.Disable()
	s.d.background(func(ctx context.Context) func() {
		err := svc.SetStartAtLogin(ctx, on)
		l, lerr := svc.StartAtLogin(ctx)
		return func() {
			switch {
			case err != nil:
				s.setStatus("Start at login not changed: "+err.Error(), widget.DangerImportance)
			case on:
				s.setStatus("Countersign will start when you log in.", widget.SuccessImportance)
			default:
				s.setStatus("Countersign will no longer start when you log in.", widget.SuccessImportance)
			}
			if lerr != nil {
				l = app.LoginSetting{Unavailable: lerr.Error()}
			}
			s.setLoginSetting(l)
		}
	})
}
