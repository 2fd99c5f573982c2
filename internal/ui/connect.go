package ui

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/countersign/countersign/internal/app"
)

// ConnectService is what the "Connect your AI app" window needs from the
// app (app.Connect). Every method reads or writes files and is never called
// on the UI goroutine.
type ConnectService interface {
	// Overview finds the AI apps, their files and what those hold.
	Overview(ctx context.Context) (app.ConnectOverview, error)
	// Preview shows the change that leaves exactly servers connected in
	// host, without writing anything.
	Preview(ctx context.Context, host string, servers []string) (app.ConnectPreview, error)
	// Apply makes that change, if it is still the previewed diff.
	Apply(ctx context.Context, host string, servers []string, previewed string) (app.ConnectResult, error)
	// Disable turns off direct vendor connections in host; Enable turns
	// them back on.
	Disable(ctx context.Context, host string, names []string) (app.ConnectResult, error)
	Enable(ctx context.Context, host string, names []string) (app.ConnectResult, error)
	// RouteAll turns off every direct connection in every AI app and
	// connects Countersign's servers for the same services in their place.
	RouteAll(ctx context.Context) ([]app.ConnectResult, error)
	// AdminSnippets is, for an administrator, the managed-configuration
	// text that locks each AI app to this machine's Countersign servers.
	AdminSnippets(ctx context.Context) (string, error)
}

// connectWindow is "Connect your AI app": for each AI app, which of
// Countersign's servers it reaches through Countersign, the exact change to
// its file before it is made, and its direct connections to the same
// vendors, which bypass review.
type connectWindow struct {
	d   *Desktop
	win fyne.Window

	content fyne.CanvasObject
	body    *fyne.Container
	scroll  *container.Scroll
	status  *widget.Label
	reload  *widget.Button
	admin   *widget.Button

	loaded bool
	busy   bool // a change or a load is under way: actions wait
	ov     app.ConnectOverview
	state  map[string]*hostChoice // by host id
}

// hostChoice is what the person has chosen for one AI app and what came of
// it.
type hostChoice struct {
	want    map[string]bool     // server id → ticked
	preview *app.ConnectPreview // the change for want; nil until previewed
	exact   bool                // the preview's exact change is shown
	result  string              // the outcome of the last change
	failed  bool
}

// newConnectWindow makes the window's state; its widgets are built when it
// first opens.
func newConnectWindow(d *Desktop) *connectWindow {
	return &connectWindow{d: d, state: map[string]*hostChoice{}}
}

func (c *connectWindow) build() {
	d := c.d
	c.status = wrapped("")
	c.body = container.NewVBox(wrapped("Loading…"))
	c.scroll = container.NewVScroll(c.body)
	c.reload = widget.NewButtonWithIcon("Refresh", theme.ViewRefreshIcon(), c.load)
	c.admin = widget.NewButton("For administrators…", c.showAdminSnippets)
	c.content = container.NewBorder(nil, container.NewBorder(nil, nil, nil, container.NewHBox(c.admin, c.reload), c.status), nil, nil, c.scroll)
	if d.o.Connect == nil {
		c.reload.Disable()
		c.admin.Disable()
		c.body.Objects = []fyne.CanvasObject{wrapped("Connecting AI apps is not available in this build of Countersign.")}
	}
}

func (c *connectWindow) window() fyne.Window {
	if c.win == nil {
		c.build()
		c.win = c.d.newWindow("Countersign: connect your AI app", fyne.NewSize(820, 640))
		c.win.SetContent(c.content)
	}
	return c.win
}

// show opens the window and looks at the AI apps afresh.
func (c *connectWindow) show() {
	w := c.window()
	w.Show()
	w.RequestFocus()
	c.load()
}

func (c *connectWindow) setStatus(text string, imp widget.Importance) {
	c.status.Importance = imp
	c.status.SetText(text)
}

// showAdminSnippets shows the text an administrator deploys to lock each
// AI app to this machine's Countersign servers, with a button to copy it.
func (c *connectWindow) showAdminSnippets() {
	svc := c.d.o.Connect
	if svc == nil {
		return
	}
	c.d.background(func(ctx context.Context) func() {
		text, err := svc.AdminSnippets(ctx)
		return func() {
			if err != nil {
				c.setStatus("Could not make the administrator settings: "+err.Error(), widget.DangerImportance)
				return
			}
			c.adminDialog(text)
		}
	})
}

func (c *connectWindow) adminDialog(text string) {
	box := widget.NewMultiLineEntry()
	box.SetText(text)
	box.Wrapping = fyne.TextWrapOff
	copyAll := widget.NewButtonWithIcon("Copy all", theme.ContentCopyIcon(), func() {
		c.d.app.Clipboard().SetContent(text)
		c.setStatus("Copied the administrator settings.", widget.SuccessImportance)
	})
	about := wrapped("To stop AI apps reaching MCP servers other than Countersign's, your IT team " +
		"deploys these settings with Group Policy, Intune or your Mac management tool. " +
		"They name this computer's Countersign servers and hold no password or token.")
	content := container.NewBorder(about, container.NewHBox(copyAll), nil, nil, box)
	dlg := dialog.NewCustom("Lock AI apps to Countersign", "Close", content, c.window())
	dlg.Resize(fyne.NewSize(760, 560))
	dlg.Show()
}

// load reads every AI app's file, off the UI goroutine. Choices go back to
// what the files hold; the outcome of the last change stays on show.
func (c *connectWindow) load() {
	svc := c.d.o.Connect
	if svc == nil || c.busy {
		return
	}
	c.setBusy(true)
	c.d.background(func(ctx context.Context) func() {
		ov, err := svc.Overview(ctx)
		return func() {
			c.busy = false
			if err != nil {
				c.setStatus("Could not look at your AI apps: "+err.Error(), widget.DangerImportance)
				c.render()
				return
			}
			c.ov, c.loaded = ov, true
			for _, h := range ov.Hosts {
				st := c.choice(h.ID)
				st.want, st.preview = map[string]bool{}, nil
				for _, id := range h.Connected {
					st.want[id] = true
				}
			}
			c.render()
		}
	})
}

func (c *connectWindow) choice(host string) *hostChoice {
	st := c.state[host]
	if st == nil {
		st = &hostChoice{want: map[string]bool{}}
		c.state[host] = st
	}
	return st
}

func (c *connectWindow) setBusy(on bool) {
	c.busy = on
	c.render()
}

const intro = "Countersign can add its servers to your AI apps, so that every tool call they make " +
	"waits for your approval. Tick the servers for each app, press Preview to see exactly what " +
	"changes in its file, then Apply. A backup of the file is kept."

// render lays the window out from the overview and the choices.
func (c *connectWindow) render() {
	if c.d.o.Connect == nil {
		return
	}
	if c.busy {
		c.reload.Disable()
	} else {
		c.reload.Enable()
	}
	if !c.loaded {
		if !c.busy {
			c.body.Objects = []fyne.CanvasObject{wrapped("Press Refresh to look for your AI apps again.")}
			c.body.Refresh()
		}
		return
	}
	// Calls that bypass review matter most: they lead the window.
	objs := append(c.directSection(), widget.NewSeparator(), heading("Your AI apps"), wrapped(intro))
	var absent []app.HostState
	for _, h := range c.ov.Hosts {
		if !h.Editable && h.Problem == "" {
			absent = append(absent, h) // not installed: listed briefly at the end
			continue
		}
		objs = append(objs, c.hostSection(h), widget.NewSeparator())
	}
	if len(absent) > 0 {
		objs = append(objs, heading("Not found on this computer"))
		for _, h := range absent {
			l := wrapped(oneLine(h.Why, 200) + " Looked for " + oneLine(h.Path, 400))
			l.Importance = widget.LowImportance
			objs = append(objs, l)
		}
	}
	c.body.Objects = objs
	c.body.Refresh()
}

// selected lists the ticked servers in the order they are shown.
func (c *connectWindow) selected(host string) []string {
	st := c.choice(host)
	var ids []string
	for _, s := range c.ov.Servers {
		if st.want[s.ID] {
			ids = append(ids, s.ID)
		}
	}
	return ids
}

func note(text string, icon fyne.Resource, imp widget.Importance) fyne.CanvasObject {
	l := wrapped(text)
	l.Importance = imp
	return container.NewBorder(nil, nil, widget.NewIcon(icon), nil, l)
}

// hostSection is one AI app: where its file is, its state, a box per
// server and Preview / Apply, each disabled with the reason when it cannot
// be used.
func (c *connectWindow) hostSection(h app.HostState) fyne.CanvasObject {
	st := c.choice(h.ID)
	// How the app reaches Countersign (a bridge program, a local address)
	// is for the log and the files, not for the person choosing here.
	facts := oneLine(h.State, 200) + "\nSettings file: " + oneLine(h.Path, 400)
	objs := []fyne.CanvasObject{heading(oneLine(h.Name, 60)), wrapped(facts)}
	if h.Problem != "" {
		objs = append(objs, note(oneLine(h.Problem, 400), theme.ErrorIcon(), widget.DangerImportance))
	}
	if !h.Editable {
		objs = append(objs, note(oneLine(h.Why, 400), theme.InfoIcon(), widget.MediumImportance))
		return container.NewVBox(objs...)
	}
	if len(c.ov.Servers) == 0 {
		objs = append(objs, note("Countersign has no servers yet. Add one in Settings, then connect it here.", theme.InfoIcon(), widget.MediumImportance))
		return container.NewVBox(objs...)
	}
	connected := func(id string) bool { return slices.Contains(h.Connected, id) }
	for _, s := range c.ov.Servers {
		id := s.ID
		label := oneLine(s.Name, 60)
		if slices.ContainsFunc(c.ov.Servers, func(o app.ConnectServer) bool { return o.ID != s.ID && o.Name == s.Name }) {
			label += " (" + oneLine(s.ID, 40) + ")" // two servers share the name: the id tells them apart
		}
		check := widget.NewCheck(label, nil)
		check.SetChecked(st.want[id])
		check.OnChanged = func(on bool) {
			st.want[id] = on
			st.preview = nil
			st.result, st.failed = "", false
			c.render()
		}
		canAdd := h.AddUnavailable == "" && !s.Removed
		if c.busy || (!st.want[id] && !connected(id) && !canAdd) {
			check.Disable()
		}
		objs = append(objs, check)
		if s.Note != "" {
			n := wrapped(oneLine(s.Note, 300))
			n.Importance = widget.LowImportance
			objs = append(objs, n)
		}
	}
	if h.AddUnavailable != "" {
		objs = append(objs, note(oneLine(h.AddUnavailable, 400), theme.WarningIcon(), widget.WarningImportance))
	}

	host := h.ID
	preview := widget.NewButtonWithIcon("Preview", theme.VisibilityIcon(), func() { c.previewHost(host) })
	apply := widget.NewButtonWithIcon("Apply", theme.ConfirmIcon(), func() { c.applyHost(host) })
	apply.Importance = widget.HighImportance
	why := ""
	switch {
	case c.busy:
		why = "Working…"
	case st.preview == nil:
		why = "Press Preview to see exactly what will change before applying it."
	case st.preview.Diff == "":
		why = "Nothing to change: the file already matches these choices."
	default:
		why = "Apply makes this change to " + oneLine(h.Name, 40) + "'s settings file; a backup is kept."
	}
	if c.busy {
		preview.Disable()
	}
	if c.busy || st.preview == nil || st.preview.Diff == "" {
		apply.Disable()
	}
	whyLabel := wrapped(why)
	whyLabel.Importance = widget.LowImportance
	objs = append(objs, container.NewBorder(nil, nil, container.NewHBox(preview, apply), nil, whyLabel))
	if st.preview != nil && st.preview.Diff != "" {
		objs = append(objs, wrapped(c.previewSentence(h)))
		if st.preview.Note != "" {
			objs = append(objs, wrapped(st.preview.Note))
		}
		label, icon := "Show the exact change", theme.MenuDropDownIcon()
		if st.exact {
			label, icon = "Hide the exact change", theme.MenuDropUpIcon()
		}
		toggle := widget.NewButtonWithIcon(label, icon, func() {
			st.exact = !st.exact
			c.render()
		})
		toggle.Importance = widget.LowImportance
		objs = append(objs, container.NewHBox(toggle))
		if st.exact {
			objs = append(objs, diffView(st.preview.Diff))
		}
	}
	if st.result != "" {
		r := wrapped(st.result)
		r.Importance = widget.SuccessImportance
		if st.failed {
			r.Importance = widget.DangerImportance
		}
		objs = append(objs, r)
	}
	return container.NewVBox(objs...)
}

// previewSentence says in one sentence what the previewed change does to
// the AI app h: which of Countersign's services it will reach through
// Countersign, and which no longer.
func (c *connectWindow) previewSentence(h app.HostState) string {
	st := c.choice(h.ID)
	var adds, drops, keeps []string
	for _, s := range c.ov.Servers {
		name := oneLine(s.Name, 60)
		on, was := st.want[s.ID], slices.Contains(h.Connected, s.ID)
		switch {
		case on && !was:
			adds = append(adds, name)
		case !on && was:
			drops = append(drops, name)
		case on:
			keeps = append(keeps, name)
		}
	}
	appName := oneLine(h.Name, 40)
	var parts []string
	if len(adds) > 0 {
		parts = append(parts, appName+" will reach "+andList(adds)+" through Countersign")
	}
	if len(drops) > 0 {
		parts = append(parts, appName+" will no longer reach "+andList(drops)+" through Countersign")
	}
	if len(parts) == 0 {
		return "Countersign's entries for " + andList(keeps) + " in " + appName + " are brought up to date (its address or access key changed)."
	}
	return strings.Join(parts, ", and ") + "."
}

// diffView shows a unified diff, each line made plainly visible.
func diffView(diff string) fyne.CanvasObject {
	lines := strings.Split(strings.TrimSuffix(diff, "\n"), "\n")
	for i, l := range lines {
		lines[i] = visible(l)
	}
	l := widget.NewLabel(strings.Join(lines, "\n"))
	l.TextStyle.Monospace = true
	l.Wrapping = fyne.TextWrapBreak
	l.Selectable = true
	return l
}

// directSection leads the window: the entries that reach vendor servers
// without Countersign, with one action that sends everything through
// Countersign and Disable for each, then those turned off, with
// Re-enable.
func (c *connectWindow) directSection() []fyne.CanvasObject {
	direct := 0
	for _, h := range c.ov.Hosts {
		direct += len(h.Direct)
	}
	title := heading("Direct connections that bypass review")
	objs := []fyne.CanvasObject{title}
	if direct > 0 {
		title.Importance = widget.WarningImportance
		what := "1 connection in your AI apps reaches a service directly"
		if direct > 1 {
			what = fmt.Sprintf("%d connections in your AI apps reach services directly", direct)
		}
		objs = append(objs,
			note(what+", so the tool calls made through them run without your approval.", theme.WarningIcon(), widget.WarningImportance))
		all := widget.NewButtonWithIcon("Send everything through Countersign", theme.ConfirmIcon(), c.routeAll)
		all.Importance = widget.HighImportance
		if c.busy {
			all.Disable()
		}
		objs = append(objs, container.NewHBox(all),
			lowText("Turns these off and connects Countersign's servers for the same services instead, so the apps keep their tools "+
				"but every call waits for you. Each entry is kept, so it can be put back."))
	}
	if direct == 0 {
		objs = append(objs, note("None: in the AI apps Countersign can read, every call to these services goes through Countersign.",
			theme.ConfirmIcon(), widget.SuccessImportance))
	}
	for _, h := range c.ov.Hosts {
		host := h.ID
		for _, e := range h.Direct {
			name := e.Name
			text := oneLine(h.Name, 40) + ": “" + oneLine(e.Name, 60) + "” reaches " + oneLine(e.ServerName, 60) + " without review."
			b := widget.NewButtonWithIcon("Disable", theme.CancelIcon(), func() { c.direct(host, name, false) })
			b.Importance = widget.WarningImportance
			if c.busy {
				b.Disable()
			}
			objs = append(objs, container.NewBorder(nil, nil, nil, b, wrapped(text)))
		}
		for _, e := range h.Disabled {
			name := e.Name
			text := oneLine(h.Name, 40) + ": “" + oneLine(e.Name, 60) + "” turned off by Countersign"
			if !e.DisabledAt.IsZero() {
				text += " on " + e.DisabledAt.Local().Format("2 Jan 2006 15:04")
			}
			text += ". Re-enabling lets its calls bypass review again."
			b := widget.NewButtonWithIcon("Re-enable", theme.MediaReplayIcon(), func() { c.direct(host, name, true) })
			if c.busy {
				b.Disable()
			}
			l := wrapped(text)
			l.Importance = widget.LowImportance
			objs = append(objs, container.NewBorder(nil, nil, nil, b, l))
		}
	}
	return objs
}

// routeAll turns off every direct connection and connects Countersign's
// servers in their place.
func (c *connectWindow) routeAll() {
	if c.busy {
		return
	}
	svc := c.d.o.Connect
	c.setBusy(true)
	c.d.background(func(ctx context.Context) func() {
		rs, err := svc.RouteAll(ctx)
		return func() {
			c.busy = false
			var apps []string
			for _, r := range rs {
				apps = append(apps, c.hostName(r.Host))
				c.choice(r.Host).result, c.choice(r.Host).failed = c.saved(r.Host, r), false
			}
			switch {
			case err != nil:
				c.setStatus("Not everything could be changed: "+err.Error(), widget.DangerImportance)
			case len(apps) == 0:
				c.setStatus("Nothing needed changing.", widget.MediumImportance)
			default:
				c.setStatus("Every call from "+andList(apps)+" now waits for your review. Restart them so they pick up the change.", widget.SuccessImportance)
			}
			c.load()
		}
	})
}

// previewHost asks what the chosen servers would change in host's file.
func (c *connectWindow) previewHost(host string) {
	if c.busy {
		return
	}
	svc := c.d.o.Connect
	servers := c.selected(host)
	c.setBusy(true)
	c.d.background(func(ctx context.Context) func() {
		p, err := svc.Preview(ctx, host, servers)
		return func() {
			c.busy = false
			st := c.choice(host)
			if !slices.Equal(servers, c.selected(host)) {
				c.setStatus("", widget.MediumImportance)
				c.render() // the choice changed meanwhile: preview again
				return
			}
			if err != nil {
				st.preview, st.result, st.failed = nil, "Can't preview: "+err.Error(), true
				c.setStatus("", widget.MediumImportance)
			} else {
				st.preview, st.result, st.failed = &p, "", false
				c.setStatus("Previewed "+c.hostName(host)+": nothing is written until you press Apply.", widget.MediumImportance)
			}
			c.render()
		}
	})
}

// applyHost makes the previewed change and then looks at the files again.
func (c *connectWindow) applyHost(host string) {
	st := c.choice(host)
	if c.busy || st.preview == nil || st.preview.Diff == "" {
		return
	}
	svc := c.d.o.Connect
	servers, previewed := c.selected(host), st.preview.Diff
	c.setBusy(true)
	c.d.background(func(ctx context.Context) func() {
		r, err := svc.Apply(ctx, host, servers, previewed)
		return func() {
			c.busy = false
			if err != nil {
				st.result, st.failed = "Not changed: "+err.Error(), true
				c.setStatus("", widget.MediumImportance)
				c.render()
				return
			}
			st.result, st.failed = c.saved(host, r), false
			c.setStatus("Saved. Restart "+c.hostName(host)+" so it picks up the change.", widget.SuccessImportance)
			c.load()
		}
	})
}

// direct turns a direct connection off or back on.
func (c *connectWindow) direct(host, name string, enable bool) {
	if c.busy {
		return
	}
	svc := c.d.o.Connect
	c.setBusy(true)
	c.d.background(func(ctx context.Context) func() {
		var r app.ConnectResult
		var err error
		if enable {
			r, err = svc.Enable(ctx, host, []string{name})
		} else {
			r, err = svc.Disable(ctx, host, []string{name})
		}
		return func() {
			c.busy = false
			st := c.choice(host)
			if err != nil {
				st.result, st.failed = "Not changed: "+err.Error(), true
				c.setStatus("Could not change “"+oneLine(name, 60)+"”: "+err.Error(), widget.DangerImportance)
				c.render()
				return
			}
			st.result, st.failed = c.saved(host, r), false
			verb := "Disabled"
			if enable {
				verb = "Re-enabled"
			}
			c.setStatus(verb+" “"+oneLine(name, 60)+"” in "+c.hostName(host)+". Restart it so it picks up the change.", widget.SuccessImportance)
			c.load()
		}
	})
}

// saved says what a change wrote.
func (c *connectWindow) saved(host string, r app.ConnectResult) string {
	switch {
	case r.Path == "" && r.Sidecar == "":
		return "Nothing needed changing."
	case r.Path == "":
		return "Updated the list of turned-off entries: " + r.Sidecar + "."
	case r.Backup == "":
		return "Created " + r.Path + "."
	}
	return "Saved " + r.Path + ". The previous version is kept as " + r.Backup + "."
}

// andList joins names as "A", "A and B", "A, B and C".
func andList(names []string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

func (c *connectWindow) hostName(id string) string {
	for _, h := range c.ov.Hosts {
		if h.ID == id {
			return h.Name
		}
	}
	return id
}
