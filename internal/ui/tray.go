package ui

import (
	"fmt"
	"time"

	"fyne.io/fyne/v2"

	"github.com/countersign/countersign/assets"
	"github.com/countersign/countersign/internal/app"
)

// trayRefresh is the least time between two rebuilds of the tray menu,
// which travel over D-Bus on Linux: a burst of calls updates it once.
const trayRefresh = 250 * time.Millisecond

var (
	iconIdle    = fyne.NewStaticResource("countersign.png", assets.Tray)
	iconWaiting = fyne.NewStaticResource("countersign-waiting.png", assets.TrayWaiting)
	iconPaused  = fyne.NewStaticResource("countersign-paused.png", assets.TrayPaused)
)

// TrayTooltip is a TrayHost that also shows a tooltip over its icon.
type TrayTooltip interface {
	SetSystemTrayTooltip(text string)
}

// TrayProbe is a TrayHost that can tell whether a tray actually shows its
// icon: on Linux a desktop may have no tray host at all (stock GNOME), and
// the icon and menu then go nowhere without an error.
type TrayProbe interface {
	// TrayShown reports whether a tray shows the icon now. It may block
	// briefly (a D-Bus round trip) and is never called on the UI goroutine.
	TrayShown() bool
}

// How long Countersign waits for a tray to show its icon before it opens
// the main window instead (a panel may start after it at login), how often
// it looks meanwhile, and how often it looks afterwards, in case the tray
// goes away or comes back.
const (
	trayGrace   = 10 * time.Second
	trayPoll    = 500 * time.Millisecond
	trayRecheck = 5 * time.Second
)

// tray is the system tray icon and its menu.
type tray struct {
	d    *Desktop
	da   TrayHost // nil until installed
	menu *fyne.Menu

	status, pause *fyne.MenuItem
	servers       int // -1 until known
	// again are the servers whose sign-in ended, each with a menu item
	// that signs in again.
	again      []app.ServerStatus
	againItems []*fyne.MenuItem
	// review is "Review settings change…", in the menu while a change made
	// to the settings file outside Countersign waits for the person.
	review        *fyne.MenuItem
	reviewPending bool
	base          []*fyne.MenuItem // the menu without the sign-in and review items
	exportBehind  int64            // audit events the organisation's collector has not taken

	shown     string        // the status and pause labels the tray last got
	icond     fyne.Resource // the icon the tray last got
	tooltip   string        // the tooltip the tray last got
	last      time.Time
	scheduled bool
}

func newTray(d *Desktop) *tray {
	t := &tray{d: d, servers: -1}
	t.status = fyne.NewMenuItem("", nil)
	t.status.Disabled = true
	t.pause = fyne.NewMenuItem("", func() { d.setPaused(!d.paused) })
	quit := fyne.NewMenuItem("Quit", d.quit)
	quit.IsQuit = true
	t.base = []*fyne.MenuItem{
		t.status,
		fyne.NewMenuItemSeparator(),
		fyne.NewMenuItem("Review…", d.showReview),
		fyne.NewMenuItem("Settings…", d.showSettings),
		fyne.NewMenuItem("Connect your AI app…", d.showConnect),
		fyne.NewMenuItem("Audit…", d.showAudit),
		fyne.NewMenuItemSeparator(),
		fyne.NewMenuItem("Getting started…", d.showGuide),
		fyne.NewMenuItem("Help", d.showHelp),
		fyne.NewMenuItem("About Countersign", d.showAbout),
		fyne.NewMenuItemSeparator(),
		t.pause,
		fyne.NewMenuItemSeparator(),
		quit,
	}
	t.review = fyne.NewMenuItem("Review settings change…", d.showSettings)
	t.menu = fyne.NewMenu("Countersign", t.base...)
	t.labels()
	return t
}

// setSettingsChange shows or removes "Review settings change…".
func (t *tray) setSettingsChange(waiting bool) {
	t.reviewPending = waiting
	t.rebuild()
}

// rebuild lays out the menu: the status, the items that ask the person
// to act, then the rest.
func (t *tray) rebuild() {
	items := []*fyne.MenuItem{t.base[0]}
	if t.reviewPending {
		items = append(items, t.review)
	}
	items = append(items, t.againItems...)
	t.menu.Items = append(items, t.base[1:]...)
	t.update()
}

// setServers records the servers' states: how many there are, and which
// need signing in again.
func (t *tray) setServers(servers []app.ServerStatus) {
	t.servers = len(servers)
	t.again = t.again[:0]
	for _, srv := range servers {
		if srv.NeedsSignIn {
			t.again = append(t.again, srv)
		}
	}
	t.againItems = t.againItems[:0]
	for _, srv := range t.again {
		t.againItems = append(t.againItems, fyne.NewMenuItem("Sign in again to "+oneLine(srv.Name, 40)+"…", func() {
			t.d.showSettings()
			if srv.TakesToken {
				t.d.settings.askToken(srv) // a rejected token: paste a new one
			} else {
				t.d.settings.sign(srv.ID, true)
			}
		}))
	}
	t.rebuild()
}

// install puts the icon and menu in the system tray. The menu goes first:
// Fyne's tray starts with it, and an icon or tooltip set before that is
// refused ("tray not ready yet") on Windows.
func (t *tray) install(da TrayHost) {
	t.da = da
	t.labels()
	t.shown = t.menuKey()
	da.SetSystemTrayMenu(t.menu)
	t.icond = t.icon()
	da.SetSystemTrayIcon(t.icond)
	t.setTooltip()
	t.last = t.d.o.Now()
}

// tooltipText is what the icon's tooltip says: the state, in one line.
func (t *tray) tooltipText() string {
	return "Countersign — " + t.statusText()
}

func (t *tray) setTooltip() {
	tt, ok := t.da.(TrayTooltip)
	if !ok {
		return
	}
	if s := t.tooltipText(); s != t.tooltip {
		t.tooltip = s
		tt.SetSystemTrayTooltip(s)
	}
}

// statusText is the first line of the menu: what is going on.
func (t *tray) statusText() string {
	if t.d.paused {
		return "Paused: every call is denied"
	}
	var s string
	switch n := t.d.review.waiting(); n {
	case 0:
		s = "No calls waiting"
	case 1:
		s = "1 call waiting"
	default:
		s = fmt.Sprintf("%d calls waiting", n)
	}
	switch t.servers {
	case -1:
	case 0:
		s += " · no servers yet"
	case 1:
		s += " · 1 server"
	default:
		s += fmt.Sprintf(" · %d servers", t.servers)
	}
	if n := len(t.again); n > 0 {
		s += fmt.Sprintf(" · %d to sign in again", n)
	}
	if t.reviewPending {
		s += " · settings change waiting"
	}
	if t.exportBehind > 0 {
		s += " · " + exportBehindText(t.exportBehind)
	}
	return s
}

// exportBehindText says how far the audit export lags.
func exportBehindText(n int64) string {
	if n == 1 {
		return "audit export: 1 event behind"
	}
	return fmt.Sprintf("audit export: %d events behind", n)
}

// exportTick reads how far the audit export lags, and shows it when it
// changed.
func (t *tray) exportTick() {
	if t.d.o.AuditExportBehind == nil {
		return
	}
	n, _ := t.d.o.AuditExportBehind()
	if n != t.exportBehind {
		t.exportBehind = n
		t.update()
	}
}

// labels brings the menu's labels, and the main window's status, which
// says the same, up to date.
func (t *tray) labels() {
	t.status.Label = t.statusText()
	if t.d.paused {
		t.pause.Label = "Resume"
	} else {
		t.pause.Label = "Pause all calls"
	}
	t.d.home.setStatus(t.status.Label, t.d.review.waiting(), t.d.paused)
}

// menuKey is what the menu shows, to tell whether it must be sent again.
func (t *tray) menuKey() string {
	key := t.status.Label + "\x00" + t.pause.Label
	if t.reviewPending {
		key += "\x00" + t.review.Label
	}
	for _, it := range t.againItems {
		key += "\x00" + it.Label
	}
	return key
}

// icon is the tray icon for the state: paused, calls waiting, or idle.
func (t *tray) icon() fyne.Resource {
	switch {
	case t.d.paused:
		return iconPaused
	case t.d.review.waiting() > 0:
		return iconWaiting
	}
	return iconIdle
}

// update brings the menu and icon up to date, at most every trayRefresh.
func (t *tray) update() {
	t.labels()
	if t.da == nil {
		return
	}
	if icon := t.icon(); icon != t.icond {
		t.icond = icon
		t.da.SetSystemTrayIcon(icon)
	}
	t.setTooltip()
	shown := t.menuKey()
	if shown == t.shown {
		return
	}
	if wait := trayRefresh - t.d.o.Now().Sub(t.last); wait > 0 {
		if !t.scheduled {
			t.scheduled = true
			time.AfterFunc(wait, func() {
				t.d.do(func() {
					t.scheduled = false
					t.update()
				})
			})
		}
		return
	}
	t.shown = shown
	t.last = t.d.o.Now()
	t.da.SetSystemTrayMenu(t.menu)
}

// trayWatch is what the interface knows of the tray: whether one shows
// the icon, and how watchTray looks (tests shorten the waits).
type trayWatch struct {
	known                bool // watchTray has found out, or there is no tray at all
	missing              bool // no tray shows the icon: the main window stands in for it
	grace, poll, recheck time.Duration
}

// watchTray checks that a tray shows the icon, where the host can tell:
// if none does within trayGrace, or a tray goes away later, the main window
// opens, so the person is never left with no way to Settings or Quit.
func (d *Desktop) watchTray(host TrayHost) {
	probe, ok := host.(TrayProbe)
	if !ok {
		return
	}
	grace, poll, recheck := d.trayw.grace, d.trayw.poll, d.trayw.recheck
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		start := time.Now()
		told, shown := false, false // whether and what the interface was told
		for {
			now := probe.TrayShown()
			switch {
			case now && (!told || !shown):
				told, shown = true, true
				d.do(func() { d.setNoTray(false) })
			case !now && (told && shown || !told && time.Since(start) >= grace):
				told, shown = true, false
				d.do(func() { d.setNoTray(true) })
			}
			wait := recheck
			if !told {
				wait = poll // retry: the tray may not be ready yet
			}
			select {
			case <-time.After(wait):
			case <-d.bg.Done():
				return
			}
		}
	}()
}
