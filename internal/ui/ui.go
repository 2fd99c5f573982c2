// Package ui is Countersign's desktop interface, built with Fyne: the tray
// icon and menu, the review window where a person approves or denies each
// waiting tool call, the settings window and the audit viewer.
//
// It is the only place where a call gets approved. It talks to the rest of
// the app only through the small interfaces declared here ([Queue],
// [SettingsService], [AuditService]), and it never blocks the relay: queue
// events reach widgets through Fyne's main goroutine (fyne.Do), and service
// calls that may touch the keychain, the network or the disk run on their
// own goroutines.
//
// This package does not import fyne.io/fyne/v2/app, so its tests run
// headless with fyne.io/fyne/v2/test and without cgo; cmd/countersign
// creates the real Fyne app and hands it to [New].
package ui

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/driver/desktop"

	"github.com/countersign/countersign/assets"
	"github.com/countersign/countersign/internal/app"
	"github.com/countersign/countersign/internal/gate"
)

// Queue is what the interface needs from the approval gate.
type Queue interface {
	// Pending returns the waiting calls, oldest first.
	Pending() []gate.Call
	// Decide records the person's decision on a waiting call.
	Decide(id string, d gate.Decision) error
	// Subscribe delivers every later change to the queue.
	Subscribe() *gate.Subscription
	// SetPaused denies every call, waiting or new, until turned off.
	SetPaused(paused bool)
}

// SettingsService is what the settings window needs from the app. Methods
// taking a context may block (disk, keychain, network) and are never called
// on the UI goroutine; CheckAllowEntry must be fast, as it runs on every
// keystroke.
type SettingsService interface {
	Servers(ctx context.Context) ([]app.ServerStatus, error)
	SignIn(ctx context.Context, serverID string) error
	SignOut(ctx context.Context, serverID string) error
	Allowlist(ctx context.Context, serverID string) (app.Allowlist, error)
	// CheckAllowEntry says what is wrong with a pattern, or nil.
	CheckAllowEntry(serverID, pattern string) error
	// SetAllowlist replaces the person's entries; locked entries stay.
	SetAllowlist(ctx context.Context, serverID string, patterns []string) error
	Timeout(ctx context.Context) (app.TimeoutSetting, error)
	SetTimeout(ctx context.Context, d time.Duration) error
	StartAtLogin(ctx context.Context) (app.LoginSetting, error)
	SetStartAtLogin(ctx context.Context, on bool) error

	// Catalog lists the servers that can be added, with their parameters.
	Catalog(ctx context.Context) ([]app.CatalogChoice, error)
	// CheckServerParam says what is wrong with a value typed for a catalog
	// server's parameter, or nil; like CheckAllowEntry it must be fast.
	CheckServerParam(kind, name, value string) error
	// AddServer adds a catalog server and returns its id.
	AddServer(ctx context.Context, kind, name string, params map[string]string) (string, error)
	// RemoveServer removes a server and forgets its sign-in.
	RemoveServer(ctx context.Context, serverID string) error
	// SetToken keeps a pasted access token for a server that takes one.
	SetToken(ctx context.Context, serverID, token string) error
	// AcceptTool trusts the definition of a tool the person was shown (the
	// warning's Definition), after reading how it changed since first seen.
	AcceptTool(ctx context.Context, serverID, tool, definition string) error
	// Changes delivers a value whenever server states change (a sign-in
	// ends, a refresh is refused); stop ends the delivery.
	Changes() (changes <-chan struct{}, stop func())

	// PendingChange returns the change made to the settings file outside
	// Countersign that waits for the person, if any.
	PendingChange(ctx context.Context) (app.SettingsChange, bool)
	// ApplyOutsideChange applies the waiting change the person was shown.
	ApplyOutsideChange(ctx context.Context, id uint64) error
	// KeepCurrentSettings refuses it: the file gets the settings in force.
	KeepCurrentSettings(ctx context.Context, id uint64) error
	// OutsideChanges delivers a value whenever such a change starts or
	// stops waiting; stop ends the delivery.
	OutsideChanges() (changes <-chan struct{}, stop func())
}

// AuditService is what the audit viewer needs from the app. Every method
// may block and is never called on the UI goroutine.
type AuditService interface {
	// Info says where events are kept and what the filters offer.
	Info(ctx context.Context) (app.AuditInfo, error)
	// Query returns up to limit events f selects with ids below before (0
	// for the newest), newest first; the page's Next keys the older page.
	Query(ctx context.Context, f app.AuditFilter, before int64, limit int) (app.AuditPage, error)
	// Export writes every event f selects to w and says how many.
	Export(ctx context.Context, f app.AuditFilter, format app.ExportFormat, w io.Writer) (int64, error)
	// Verify checks the stored log's hash chain.
	Verify(ctx context.Context) (app.Integrity, error)
}

// Options configure the interface.
type Options struct {
	Queue    Queue
	Settings SettingsService
	Audit    AuditService
	// Connect edits AI apps' configuration files ("Connect your AI app");
	// nil means the window says it is not available.
	Connect ConnectService
	// Tray shows a system tray icon and menu and starts with no window;
	// without it the review window is the main window and closing it
	// quits. Only set it where the platform has a tray (on Linux, a
	// session bus).
	Tray bool
	// TrayHost shows the tray icon and menu; nil means the Fyne app's own
	// system tray. Fyne's tray keeps a hidden OpenGL window for its whole
	// life, so on Linux the program passes one that only talks D-Bus and
	// the graphics stack loads when the first window opens.
	TrayHost TrayHost
	// FirstRun shows "Getting started" at start: Countersign has no
	// settings yet.
	FirstRun bool
	// Release, if set, runs off the UI goroutine a few seconds after start,
	// to hand memory that start-up used back to the OS.
	Release func()
	Logger  *slog.Logger // nil means slog.Default()
	// AuditExportBehind says how many audit events wait for the
	// organisation's collector, which is not taking them; the tray and the
	// main window show it. nil means no export. It must not block.
	AuditExportBehind func() (behind int64, problem string)

	// Test seams; nil means the real thing.
	Now func() time.Time // the clock
	Do  func(func())     // runs a function on the UI goroutine (fyne.Do)
	Go  func(func())     // runs a function off the UI goroutine (go f())
}

// TrayHost is a system tray: fyne.io/fyne/v2/driver/desktop.App is one.
type TrayHost interface {
	SetSystemTrayIcon(icon fyne.Resource)
	SetSystemTrayMenu(menu *fyne.Menu)
}

// settle is how long after start Release runs.
const settle = 5 * time.Second

// guard is how long a call must have been on screen, after it appeared
// there without the person choosing it, before a decision on it counts:
// a key pressed for the previous call must not decide the next one.
const guard = 600 * time.Millisecond

// tick is how often ages and countdowns are refreshed.
const tick = time.Second

// Desktop is the running interface: tray, review, settings and audit
// windows. Its methods, except Show, run on the UI goroutine.
type Desktop struct {
	app fyne.App
	o   Options
	log *slog.Logger

	review   *review
	settings *settingsWindow
	audit    *auditWindow
	connect  *connectWindow
	tray     *tray
	home     *homeWindow
	guide    *guideWindow
	help     *helpWindow
	about    *aboutWindow

	trayw   trayWatch     // whether a tray shows the icon
	quitAsk dialog.Dialog // the open "Quit Countersign?" question

	paused bool
	bg     context.Context // ends when the interface stops; background work uses it
	stopBg context.CancelFunc
	wg     sync.WaitGroup
	sub    *gate.Subscription
}

// New builds the interface on a Fyne app (fyne.io/fyne/v2/app.NewWithID in
// the real program, fyne.io/fyne/v2/test.NewApp in tests). Each window is
// built when first shown, the review window when the first call arrives:
// an idle tray app lays out no text, so it parses no font.
func New(a fyne.App, o Options) *Desktop {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Do == nil {
		o.Do = fyne.Do
	}
	if o.Go == nil {
		o.Go = func(f func()) { go f() }
	}
	d := &Desktop{app: a, o: o, log: o.Logger, trayw: trayWatch{grace: trayGrace, poll: trayPoll, recheck: trayRecheck}}
	d.bg, d.stopBg = context.WithCancel(context.Background())
	a.SetIcon(fyne.NewStaticResource("icon.png", assets.Icon))
	d.review = newReview(d)
	d.settings = newSettingsWindow(d)
	d.audit = newAuditWindow(d)
	d.connect = newConnectWindow(d)
	d.home = newHomeWindow(d)
	d.guide = newGuideWindow(d)
	d.help, d.about = &helpWindow{d: d}, &aboutWindow{d: d}
	d.tray = newTray(d)
	return d
}

// Run shows the interface and returns when the person quits or ctx ends.
// It must be called on the main goroutine.
func (d *Desktop) Run(ctx context.Context) error {
	d.start()
	defer d.stop()
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-ctx.Done():
			d.o.Do(d.app.Quit)
		case <-stopped:
		}
	}()
	host := d.o.TrayHost
	if da, ok := d.app.(desktop.App); ok && host == nil {
		host = da
	}
	if d.o.Tray && host != nil {
		d.tray.install(host)
		d.watchTray(host)
	} else {
		d.setNoTray(true)
	}
	if d.o.FirstRun {
		d.showGuide()
	}
	d.app.Run()
	return nil
}

// Show brings the main window forward, and the review window when calls
// wait; another launch of Countersign asks for it. It is safe to call
// from any goroutine.
func (d *Desktop) Show() {
	d.do(d.showFront)
}

// OpenURL opens u in the person's browser through the OS, for signing in.
// It may be called from any goroutine.
func (d *Desktop) OpenURL(u *url.URL) error {
	return d.app.OpenURL(u)
}

// start subscribes to the queue and starts the goroutines that feed the
// interface: queue events, and the clock for ages and countdowns.
func (d *Desktop) start() {
	d.sub = d.o.Queue.Subscribe()
	for _, c := range d.o.Queue.Pending() {
		d.review.add(c, true)
	}
	d.review.refresh()
	d.tray.update()
	d.wg.Add(2)
	go func() {
		defer d.wg.Done()
		d.pump(d.sub)
	}()
	go func() {
		defer d.wg.Done()
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				d.do(d.tick)
			case <-d.bg.Done():
				return
			}
		}
	}()
	if d.o.Release != nil {
		// Start-up garbage (settings, catalog, font scan) is gone by then.
		time.AfterFunc(settle, d.o.Release)
	}
	d.background(func(ctx context.Context) func() {
		servers, err := d.o.Settings.Servers(ctx)
		return func() {
			if err == nil {
				d.tray.setServers(servers)
			}
		}
	})
	d.outsideChanged()
	outside, stopOutside := d.o.Settings.OutsideChanges()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer stopOutside()
		for {
			select {
			case <-outside:
				d.outsideChanged()
			case <-d.bg.Done():
				return
			}
		}
	}()
	changes, stopChanges := d.o.Settings.Changes()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer stopChanges()
		for {
			select {
			case <-changes:
				d.serversChanged()
			case <-d.bg.Done():
				return
			}
		}
	}()
}

// serversChanged fetches the servers' states after a sign-in changed, for
// the tray and the settings window.
func (d *Desktop) serversChanged() {
	d.background(func(ctx context.Context) func() {
		servers, seq, err := d.settings.readServers(ctx)
		if err != nil {
			d.log.Warn("reading the servers' states", "err", err)
			return nil
		}
		return func() {
			if !d.settings.fresh(seq) {
				return // a newer read is already shown
			}
			if d.settings.win != nil && len(servers) == len(d.settings.servers) {
				d.settings.setServerCards(servers) // the same servers, in new states
				return
			}
			d.tray.setServers(servers)
		}
	})
}

// outsideChanged fetches the change made to the settings file outside
// Countersign that waits for the person, and shows it: in the settings
// window, which opens when a new one starts waiting, and in the tray.
func (d *Desktop) outsideChanged() {
	d.background(func(ctx context.Context) func() {
		c, ok := d.o.Settings.PendingChange(ctx)
		return func() {
			if d.settings.setPending(c, ok) {
				d.showSettings()
			}
			d.tray.setSettingsChange(ok)
		}
	})
}

// stop ends the goroutines start began.
func (d *Desktop) stop() {
	d.stopBg()
	d.sub.Close()
	d.wg.Wait()
}

// pump hands queue events to the UI goroutine, several at a time when they
// arrive in a burst.
func (d *Desktop) pump(sub *gate.Subscription) {
	events := sub.Events()
	for ev := range events {
		batch := []gate.Event{ev}
	more:
		for len(batch) < 512 {
			select {
			case ev, ok := <-events:
				if !ok {
					break more
				}
				batch = append(batch, ev)
			default:
				break more
			}
		}
		d.do(func() { d.apply(batch) })
	}
}

// apply updates the interface for queue events, on the UI goroutine. A
// call that starts waiting brings the review window forward: the AI app is
// blocked until the person decides.
func (d *Desktop) apply(batch []gate.Event) {
	arrived := false
	for _, ev := range batch {
		switch ev.Kind {
		case gate.EventAdded:
			d.review.add(ev.Call, false)
			arrived = true
		case gate.EventEnded:
			d.review.ended(ev.Call, ev.Verdict)
		case gate.EventHostGone, gate.EventHostBack:
			d.review.update(ev.Call)
		}
	}
	d.review.refresh()
	d.tray.update()
	if arrived && d.review.waiting() > 0 { // raised for every new call, even when open behind others
		d.showReview()
	}
}

// do runs f on the UI goroutine, unless the interface has stopped by then.
func (d *Desktop) do(f func()) {
	d.o.Do(func() {
		if d.bg.Err() == nil {
			f()
		}
	})
}

// background runs work off the UI goroutine and then its result on it.
// work gets a context that ends when the interface stops.
func (d *Desktop) background(work func(ctx context.Context) func()) {
	d.o.Go(func() {
		if done := work(d.bg); done != nil {
			d.do(done)
		}
	})
}

// setPaused turns pause on or off, on the UI goroutine.
func (d *Desktop) setPaused(on bool) {
	d.paused = on
	d.o.Queue.SetPaused(on)
	if d.review.built() { // else building it shows the state
		d.review.showPaused()
		// A container shown or hidden is laid out again only on a refresh:
		// the banner must appear at once in an open window.
		d.review.content.Refresh()
		if d.review.waiting() == 0 {
			d.review.showDetail() // the empty pane says what pausing does
		}
	}
	d.tray.update()
}

func (d *Desktop) showReview()   { d.review.show() }
func (d *Desktop) showSettings() { d.settings.show() }
func (d *Desktop) showAudit()    { d.audit.show() }

// showConnect opens "Connect your AI app".
func (d *Desktop) showConnect() { d.connect.show() }

// newWindow makes a window that hides when closed, to be shown again later.
func (d *Desktop) newWindow(title string, size fyne.Size) fyne.Window {
	w := d.app.NewWindow(title)
	w.Resize(size)
	w.SetCloseIntercept(w.Hide)
	w.SetMainMenu(d.mainMenu()) // every window reaches Settings, tray or not
	return w
}
