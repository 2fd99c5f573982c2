package ui

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"
	"github.com/google/go-cmp/cmp"

	"github.com/countersign/countersign/internal/buildinfo"
	"github.com/countersign/countersign/internal/clocktest"
)

// probeApp is a tray app that can say whether a tray shows its icon, and
// records its tooltips.
type probeApp struct {
	*trayApp
	shown    atomic.Bool
	mu       sync.Mutex
	tooltips []string
}

func (a *probeApp) TrayShown() bool { return a.shown.Load() }

func (a *probeApp) SetSystemTrayTooltip(s string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tooltips = append(a.tooltips, s)
}

func (a *probeApp) lastTooltip() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.tooltips) == 0 {
		return ""
	}
	return a.tooltips[len(a.tooltips)-1]
}

// runProbe runs the interface on a tray app whose tray shows the icon or
// not, with short waits, until the test ends.
func runProbe(t *testing.T, shown bool) (*Desktop, *probeApp, *uiQueue) {
	t.Helper()
	pa := &probeApp{trayApp: newTrayApp(t)}
	pa.shown.Store(shown)
	ui := &uiQueue{wake: make(chan struct{}, 1)}
	pa.loop = ui
	d := New(pa, Options{Queue: newFixedQueue(t), Settings: newFakeSettings(), Audit: &fakeAudit{}, Tray: true, TrayHost: pa, Do: ui.do})
	d.trayw.grace, d.trayw.poll, d.trayw.recheck = 300*time.Millisecond, 10*time.Millisecond, 20*time.Millisecond
	done := make(chan error, 1)
	go func() { done <- d.Run(context.Background()) }()
	t.Cleanup(func() {
		pa.Quit()
		<-done
	})
	return d, pa, ui
}

// onUI runs f on the interface's UI goroutine and returns its result.
func onUI[T any](ui *uiQueue, f func() T) T {
	c := make(chan T, 1)
	ui.do(func() { c <- f() })
	return <-c
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestNoTrayOpensTheMainWindow: where no tray shows the icon (stock GNOME),
// Countersign retries for a while, then opens its main window, which
// reaches everything the tray menu does; a tray that appears or goes away
// later is followed.
func TestNoTrayOpensTheMainWindow(t *testing.T) {
	t.Run("no tray host", func(t *testing.T) {
		d, pa, ui := runProbe(t, false)
		if onUI(ui, func() bool { return d.home.visible }) {
			t.Fatal("the main window opened before the tray had time to show up")
		}
		eventually(t, "the main window", func() bool { return onUI(ui, func() bool { return d.home.visible && d.trayw.missing }) })
		if !onUI(ui, func() bool { return d.home.noTray.Visible() }) {
			t.Error("the main window does not say why it is there")
		}
		// A panel starts later: the window stays, its note goes.
		pa.shown.Store(true)
		eventually(t, "the tray", func() bool { return onUI(ui, func() bool { return !d.trayw.missing }) })
		if !onUI(ui, func() bool { return d.home.visible && !d.home.noTray.Visible() }) {
			t.Error("the main window closed, or kept its no-tray note, when a tray appeared")
		}
		// The panel goes away: the main window comes back.
		onUI(ui, func() bool { d.home.win.Close(); return true })
		pa.shown.Store(false)
		eventually(t, "the main window again", func() bool { return onUI(ui, func() bool { return d.home.visible && d.trayw.missing }) })
	})
	t.Run("a tray shows the icon", func(t *testing.T) {
		d, _, ui := runProbe(t, true)
		eventually(t, "the check", func() bool { return onUI(ui, func() bool { return d.trayChecked() }) })
		if onUI(ui, func() bool { return d.home.visible }) {
			t.Error("the main window opened although a tray shows the icon")
		}
	})
	t.Run("no tray at all", func(t *testing.T) {
		a := test.NewTempApp(t)
		ui := &uiQueue{wake: make(chan struct{}, 1)}
		d := New(a, Options{Queue: newFixedQueue(t), Settings: newFakeSettings(), Audit: &fakeAudit{}, Do: ui.do})
		if err := d.Run(context.Background()); err != nil { // the test app's Run returns at once
			t.Fatal(err)
		}
		if !d.home.visible || !d.home.noTray.Visible() {
			t.Error("without a tray the main window is not shown")
		}
	})
}

// trayChecked reports whether watchTray has told the interface anything.
func (d *Desktop) trayChecked() bool { return d.trayw.known }

// TestMainWindow: its buttons reach Review, Settings, Connect, Audit,
// Getting started, Help, About, Pause and Quit; its status follows the
// tray's.
func TestMainWindow(t *testing.T) {
	h, ta := newTrayHarness(t, newFixedQueue(t, createIssue("1", T0)))
	h.d.setNoTray(true)
	hw := h.d.home
	if !hw.visible {
		t.Fatal("the main window is not open")
	}
	h.settle()
	if got := hw.status.Text; got != "1 call waiting · 2 servers" {
		t.Errorf("status %q", got)
	}
	assertMarkup(t, "home_no_tray.xml", hw.window().Canvas())
	capturePNG(t, hw.window(), "home_no_tray.png")

	tap := func(label string) {
		t.Helper()
		b := buttons(hw.content, label)
		if len(b) != 1 {
			t.Fatalf("%d %q buttons in the main window, want 1", len(b), label)
		}
		test.Tap(b[0])
	}
	tap("Review waiting calls…")
	if !h.d.review.visible {
		t.Error("Review did not open the review window")
	}
	tap("Settings…")
	if h.d.settings.win == nil || !h.d.settings.win.Content().Visible() {
		t.Error("Settings… did not open Settings")
	}
	tap("Connect your AI app…")
	if h.d.connect.win == nil {
		t.Error("Connect your AI app… did not open its window")
	}
	tap("Audit…")
	if h.d.audit.win == nil {
		t.Error("Audit… did not open the audit viewer")
	}
	tap("Getting started…")
	if !h.d.guide.visible {
		t.Error("Getting started… did not open it")
	}
	tap("Help")
	tap("About Countersign")
	if h.d.help.win == nil || h.d.about.win == nil {
		t.Fatal("Help or About did not open")
	}
	tap("Pause all calls")
	if !h.d.paused || hw.status.Text != "Paused: every call is denied" {
		t.Errorf("Pause: paused %v, status %q", h.d.paused, hw.status.Text)
	}
	tap("Resume")
	if h.d.paused {
		t.Error("Resume did not resume")
	}
	tap("Quit")
	if ta.hasQuit() {
		t.Error("Quit with a call waiting quit without asking")
	}
}

// TestHelpAndAbout: plain-words help in the app (there may be no
// internet), and About with the version; both reach Settings.
func TestHelpAndAbout(t *testing.T) {
	h := newHarness(t, newFixedQueue(t))
	h.d.showHelp()
	h.d.showAbout()
	h.settle()
	assertMarkup(t, "help.xml", h.d.help.win.Canvas())
	capturePNG(t, h.d.help.win, "help.png")
	assertMarkup(t, "about.xml", h.d.about.win.Canvas())
	capturePNG(t, h.d.about.win, "about.png")
	if !hasText(h.d.about.win.Content(), "Version "+buildinfo.Version) {
		t.Error("About does not give the version")
	}
	for _, w := range []fyne.Window{h.d.help.win, h.d.about.win} {
		b := buttons(w.Content(), "Settings…")
		if len(b) != 1 {
			t.Fatalf("%s has no Settings… button", w.Title())
		}
		test.Tap(b[0])
	}
	if h.d.settings.win == nil {
		t.Error("Settings… did not open Settings")
	}
}

// TestSecondLaunch: launching again shows the main window, from which
// Settings is reachable, with the review window in front when calls wait.
func TestSecondLaunch(t *testing.T) {
	t.Run("nothing waiting", func(t *testing.T) {
		h := newHarness(t, newFixedQueue(t))
		go h.d.Show() // from the loopback handler's goroutine
		h.waitFor("the main window", func() bool { return h.d.home.visible })
		if h.d.review.visible {
			t.Error("the review window opened with nothing to review")
		}
		if len(buttons(h.d.home.content, "Settings…")) != 1 {
			t.Error("the window a second launch shows has no Settings…")
		}
	})
	t.Run("calls waiting", func(t *testing.T) {
		h := newHarness(t, newFixedQueue(t, createIssue("1", T0)))
		if h.d.review.visible {
			t.Fatal("the review window is open before the second launch")
		}
		go h.d.Show()
		h.waitFor("both windows", func() bool { return h.d.home.visible && h.d.review.visible })
	})
}

// TestQuitAsksWhileCallsWait: Quit denies waiting calls, so it asks first,
// over the review window; with nothing waiting it quits at once.
func TestQuitAsksWhileCallsWait(t *testing.T) {
	t.Run("calls waiting", func(t *testing.T) {
		h, ta := newTrayHarness(t, newFixedQueue(t, createIssue("1", T0), listIssues("2", T0)))
		quit := h.d.tray.menu.Items[len(h.d.tray.menu.Items)-1]
		quit.Action()
		if ta.hasQuit() {
			t.Fatal("quit without asking while 2 calls wait")
		}
		w := h.d.review.window()
		if !h.d.review.visible || w.Canvas().Overlays().Top() == nil {
			t.Fatal("no question over the review window")
		}
		if !hasText(w.Canvas().Overlays().Top(), "2 calls are waiting for you. If you quit, they are denied.") {
			t.Error("the question does not say what quitting does")
		}
		quit.Action() // again: still one question
		if n := len(w.Canvas().Overlays().List()); n != 1 {
			t.Errorf("%d overlays after asking twice, want 1", n)
		}
		capturePNG(t, w, "quit_question.png")
		test.Tap(overlayButton(t, w, "Keep running"))
		if ta.hasQuit() || w.Canvas().Overlays().Top() != nil {
			t.Fatal("Keep running quit, or left the question open")
		}
		quit.Action()
		test.Tap(overlayButton(t, w, "Quit and deny"))
		if !ta.hasQuit() {
			t.Error("Quit and deny did not quit")
		}
	})
	t.Run("nothing waiting", func(t *testing.T) {
		h, ta := newTrayHarness(t, newFixedQueue(t))
		h.d.quit()
		if !ta.hasQuit() {
			t.Error("did not quit at once with nothing waiting")
		}
	})
	if got := quitQuestion(1); got != "1 call is waiting for you. If you quit, it is denied." {
		t.Errorf("quitQuestion(1) = %q", got)
	}
}

func overlayButton(t *testing.T, w fyne.Window, label string) *widget.Button {
	t.Helper()
	b := buttons(w.Canvas().Overlays().Top(), label)
	if len(b) != 1 {
		t.Fatalf("no %q button in the question", label)
	}
	return b[0]
}

// TestTrayTooltipAndPausedIcon: the tooltip says the state, and pausing
// changes the icon at once.
func TestTrayTooltipAndPausedIcon(t *testing.T) {
	q := newRealQueue(t, time.Hour)
	pa := &probeApp{trayApp: newTrayApp(t)}
	h := &harness{t: t, q: q, clock: clocktest.New(T0), ui: &uiQueue{wake: make(chan struct{}, 1)}, settings: newFakeSettings(), audit: &fakeAudit{}}
	h.d = New(pa, Options{Queue: q, Settings: h.settings, Audit: h.audit, Tray: true, Now: h.clock.Now, Do: h.ui.do})
	h.d.start()
	h.d.tray.install(pa)
	t.Cleanup(h.d.stop)
	h.settle()
	var seen []string
	note := func() {
		if s := pa.lastTooltip(); len(seen) == 0 || seen[len(seen)-1] != s {
			seen = append(seen, s)
		}
	}
	h.waitFor("the servers", func() bool { return strings.HasSuffix(pa.lastTooltip(), "2 servers") })
	note()
	q.submit(createIssue("", time.Time{}))
	q.submit(listIssues("", time.Time{}))
	h.waitFor("two calls", func() bool { return h.d.review.waiting() == 2 })
	note()
	h.d.setPaused(true)
	note()
	if got := pa.icons[len(pa.icons)-1]; got != "countersign-paused.png" {
		t.Errorf("icon %q while paused", got)
	}
	h.waitFor("the calls to be denied", func() bool { return h.d.review.waiting() == 0 })
	h.d.setPaused(false)
	note()
	if got := pa.icons[len(pa.icons)-1]; got != "countersign.png" {
		t.Errorf("icon %q after resuming", got)
	}
	want := []string{
		"Countersign — No calls waiting · 2 servers",
		"Countersign — 2 calls waiting · 2 servers",
		"Countersign — Paused: every call is denied",
		"Countersign — No calls waiting · 2 servers",
	}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("tooltips (-want +got)\n%s", diff)
	}
	h.d.tray.setServers(nil) // a new user: not "0 servers"
	if got := pa.lastTooltip(); got != "Countersign — No calls waiting · no servers yet" {
		t.Errorf("tooltip with no server %q", got)
	}
}

// TestPausedBannerShowsAtOnce: pausing with the review window open shows
// the banner in it at once, and the empty list says calls are denied
// rather than that they will be shown.
func TestPausedBannerShowsAtOnce(t *testing.T) {
	h := newHarness(t, newFixedQueue(t))
	h.d.showReview()
	w := h.d.review.window()
	w.Resize(fyne.NewSize(1040, 680))
	h.settle()
	if h.d.review.pausedBox.Size().Height > 0 {
		t.Fatal("the banner has a size before pausing")
	}
	h.d.setPaused(true)
	if h.d.review.pausedBox.Size().Height == 0 || !h.d.review.pausedBox.Visible() {
		t.Fatal("the paused banner is not laid out after pausing")
	}
	if hasText(h.d.review.detail, "When an AI app wants to run a tool") {
		t.Error("while paused, the review window still says calls will be shown")
	}
	if !hasText(h.d.review.detail, "denied") {
		t.Error("while paused, the empty review window does not say calls are denied")
	}
	capturePNG(t, w, "review_paused.png")
	h.d.setPaused(false)
	if h.d.review.pausedBox.Visible() || !hasText(h.d.review.detail, "When an AI app wants to run a tool") {
		t.Error("resuming left the paused banner or message")
	}
}

// TestEveryWindowReachesSettings: every window has a menu bar with
// Settings… (and the rest of the tray menu), so no window strands the
// person, tray or not; its Quit asks while calls wait.
func TestEveryWindowReachesSettings(t *testing.T) {
	h, ta := newTrayHarness(t, newFixedQueue(t, createIssue("1", T0)))
	d := h.d
	opens := map[string]func(){
		"review": d.showReview, "settings": d.showSettings, "audit": d.showAudit, "connect": d.showConnect,
		"main": d.home.show, "getting started": d.showGuide, "help": d.showHelp, "about": d.showAbout,
	}
	for _, open := range opens {
		open()
		h.settle()
	}
	wins := []fyne.Window{d.review.win, d.settings.win, d.audit.win, d.connect.win, d.home.win, d.guide.win, d.help.win, d.about.win}
	for i, w := range wins {
		if w == nil {
			t.Fatalf("window %d did not open", i)
		}
		m := w.MainMenu()
		if m == nil {
			t.Errorf("window %q has no menu bar", w.Title())
			continue
		}
		var settings, quit *fyne.MenuItem
		for _, menu := range m.Items {
			for _, it := range menu.Items {
				switch it.Label {
				case "Settings…":
					settings = it
				case "Quit":
					quit = it
				}
			}
		}
		if settings == nil || quit == nil || !quit.IsQuit {
			t.Errorf("window %q: its menu bar lacks Settings… or a Quit marked as such", w.Title())
		}
	}
	menu := d.review.window().MainMenu().Items[0]
	menu.Items[len(menu.Items)-1].Action() // Quit
	if ta.hasQuit() {
		t.Error("the menu bar's Quit quit without asking while a call waits")
	}
}
