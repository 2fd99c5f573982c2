package ui

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/test"

	"github.com/google/go-cmp/cmp"

	"github.com/countersign/countersign/internal/clocktest"
)

// trayApp is Fyne's test app with a system tray that records what it is
// given, and a Quit that is remembered.
type trayApp struct {
	fyne.App
	mu       sync.Mutex
	menus    []string // the status line of each menu set
	icons    []string
	quitOnce sync.Once
	quitted  chan struct{}
	loop     *uiQueue // if set, Run runs what the interface hands to the UI goroutine
}

func newTrayApp(t *testing.T) *trayApp {
	return &trayApp{App: test.NewTempApp(t), quitted: make(chan struct{})}
}

// Run blocks like a real app's event loop, until Quit.
func (a *trayApp) Run() {
	if a.loop == nil {
		<-a.quitted
		return
	}
	for {
		a.loop.drain()
		select {
		case <-a.quitted:
			return
		case <-a.loop.wake:
		}
	}
}

func (a *trayApp) Quit() { a.quitOnce.Do(func() { close(a.quitted) }) }

func (a *trayApp) hasQuit() bool {
	select {
	case <-a.quitted:
		return true
	default:
		return false
	}
}

func (a *trayApp) SetSystemTrayMenu(m *fyne.Menu) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.menus = append(a.menus, m.Items[0].Label)
}

func (a *trayApp) SetSystemTrayIcon(r fyne.Resource) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.icons = append(a.icons, r.Name())
}

func (a *trayApp) SetSystemTrayWindow(fyne.Window) {}

func (a *trayApp) lastMenu() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.menus) == 0 {
		return ""
	}
	return a.menus[len(a.menus)-1]
}

func newTrayHarness(t *testing.T, q Queue) (*harness, *trayApp) {
	t.Helper()
	ta := newTrayApp(t)
	h := &harness{t: t, q: q, clock: clocktest.New(T0), ui: &uiQueue{wake: make(chan struct{}, 1)},
		settings: newFakeSettings(), audit: &fakeAudit{}}
	h.d = New(ta, Options{Queue: q, Settings: h.settings, Audit: h.audit, Tray: true, Now: h.clock.Now, Do: h.ui.do})
	h.d.start()
	h.d.tray.install(ta)
	t.Cleanup(h.d.stop)
	h.settle()
	return h, ta
}

func labels(m *fyne.Menu) []string {
	var out []string
	for _, it := range m.Items {
		if it.IsSeparator {
			out = append(out, "—")
			continue
		}
		l := it.Label
		if it.Disabled {
			l += " (disabled)"
		}
		out = append(out, l)
	}
	return out
}

func TestTray(t *testing.T) {
	q := newRealQueue(t, time.Hour)
	h, ta := newTrayHarness(t, q)

	want := []string{"No calls waiting · 2 servers (disabled)", "—", "Review…", "Settings…", "Connect your AI app…", "Audit…", "—",
		"Getting started…", "Help", "About Countersign", "—", "Pause all calls", "—", "Quit"}
	if diff := cmp.Diff(want, labels(h.d.tray.menu)); diff != "" {
		t.Errorf("menu (-want +got)\n%s", diff)
	}
	if diff := cmp.Diff([]string{"countersign.png"}, ta.icons); diff != "" {
		t.Errorf("icons (-want +got)\n%s", diff)
	}

	q.submit(createIssue("", time.Time{}))
	h.waitFor("the call", func() bool { return h.d.review.waiting() == 1 })
	h.clock.Advance(trayRefresh)
	h.d.tray.update()
	if got := ta.lastMenu(); got != "1 call waiting · 2 servers" {
		t.Errorf("status %q", got)
	}
	if got := ta.icons[len(ta.icons)-1]; got != "countersign-waiting.png" {
		t.Errorf("icon %q while a call waits", got)
	}

	h.ready()
	test.Tap(h.d.review.approveBtn)
	h.d.review.dlg.(*dialog.ConfirmDialog).Confirm() // the call carries a secret: a second step
	q.verdict(t)
	if got := ta.icons[len(ta.icons)-1]; got != "countersign.png" {
		t.Errorf("icon %q after the call was decided", got)
	}
	h.waitFor("the menu to catch up", func() bool { return ta.lastMenu() == "No calls waiting · 2 servers" })
}

func TestTrayThrottlesBursts(t *testing.T) {
	q := newRealQueue(t, time.Hour)
	h, ta := newTrayHarness(t, q)
	before := len(ta.menus)
	for range 50 {
		q.submit(listIssues("", time.Time{}))
	}
	h.waitFor("50 calls", func() bool { return h.d.review.waiting() == 50 })
	h.clock.Advance(time.Second)
	h.waitFor("the menu to show them", func() bool { return ta.lastMenu() == "50 calls waiting · 2 servers" })
	if n := len(ta.menus) - before; n > 3 {
		t.Errorf("the menu was rebuilt %d times for one burst", n)
	}
}

func TestTrayItems(t *testing.T) {
	h, ta := newTrayHarness(t, newFixedQueue(t))
	item := func(label string) *fyne.MenuItem {
		for _, it := range h.d.tray.menu.Items {
			if it.Label == label {
				return it
			}
		}
		t.Fatalf("no menu item %q", label)
		return nil
	}
	item("Review…").Action()
	if !h.d.review.visible {
		t.Error("Review… did not show the review window")
	}
	item("Settings…").Action()
	if h.d.settings.win == nil {
		t.Error("Settings… did not open the settings window")
	}
	item("Audit…").Action()
	if h.d.audit.win == nil {
		t.Error("Audit… did not open the audit viewer")
	}
	item("Getting started…").Action()
	if !h.d.guide.visible {
		t.Error("Getting started… did not open it")
	}
	item("Help").Action()
	item("About Countersign").Action()
	if h.d.help.win == nil || h.d.about.win == nil {
		t.Error("Help or About Countersign did not open its window")
	}
	q := item("Quit")
	if !q.IsQuit {
		t.Error("Quit is not marked as the quit item")
	}
	q.Action()
	if !ta.hasQuit() {
		t.Error("Quit did not quit")
	}
}

func TestRunAndShow(t *testing.T) {
	t.Run("without a tray the main window opens", func(t *testing.T) {
		a := test.NewTempApp(t)
		q := newFixedQueue(t)
		ui := &uiQueue{wake: make(chan struct{}, 1)}
		d := New(a, Options{Queue: q, Settings: newFakeSettings(), Audit: &fakeAudit{}, Do: ui.do})
		if err := d.Run(context.Background()); err != nil { // the test app's Run returns at once
			t.Fatal(err)
		}
		if !d.home.visible {
			t.Error("the main window is not shown")
		}
	})
	t.Run("a second launch shows the main window", func(t *testing.T) {
		h := newHarness(t, newFixedQueue(t))
		if h.d.home.visible || h.d.review.visible {
			t.Fatal("a window is open at start")
		}
		go h.d.Show() // from the loopback handler's goroutine
		h.waitFor("the main window", func() bool { return h.d.home.visible })
	})
	t.Run("ending the context quits", func(t *testing.T) {
		ta := newTrayApp(t)
		ta.loop = &uiQueue{wake: make(chan struct{}, 1)}
		d := New(ta, Options{Queue: newFixedQueue(t), Settings: newFakeSettings(), Audit: &fakeAudit{}, Tray: true, Do: ta.loop.do})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return when its context ended")
		}
	})
}

// TestTraySaysWhenTheAuditExportLags shows "audit export: n events behind"
// while the organisation's collector does not take events, and drops it
// once it does.
func TestTraySaysWhenTheAuditExportLags(t *testing.T) {
	q := newRealQueue(t, time.Hour)
	h, ta := newTrayHarness(t, q)
	var mu sync.Mutex
	behind := int64(0)
	h.d.o.AuditExportBehind = func() (int64, string) {
		mu.Lock()
		defer mu.Unlock()
		return behind, "connection refused"
	}
	set := func(n int64) {
		mu.Lock()
		behind = n
		mu.Unlock()
		h.clock.Advance(trayRefresh)
		h.d.tick()
		h.settle()
	}
	set(12)
	if got, want := ta.lastMenu(), "No calls waiting · 2 servers · audit export: 12 events behind"; got != want {
		t.Errorf("status %q, want %q", got, want)
	}
	// The main window says the same.
	h.d.setNoTray(true)
	h.settle()
	if got := h.d.home.status.Text; !strings.HasSuffix(got, "audit export: 12 events behind") {
		t.Errorf("main window status %q", got)
	}
	capturePNG(t, h.d.home.window(), "home_export_behind.png")
	set(1)
	if got := ta.lastMenu(); !strings.HasSuffix(got, "audit export: 1 event behind") {
		t.Errorf("status %q", got)
	}
	set(0)
	if got := ta.lastMenu(); strings.Contains(got, "audit export") {
		t.Errorf("status %q after the export caught up", got)
	}
}
