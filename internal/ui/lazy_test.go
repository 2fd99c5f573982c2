package ui

import (
	"sync/atomic"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/countersign/countersign/internal/clocktest"
)

// fontCounter is a theme that counts the fonts Fyne asks of it. Fyne asks
// when it first measures or draws text in a style, and then parses the
// font: the biggest part of an idle app's heap.
type fontCounter struct {
	fyne.Theme
	asked atomic.Int32
}

func (t *fontCounter) Font(s fyne.TextStyle) fyne.Resource {
	t.asked.Add(1)
	return t.Theme.Font(s)
}

// builtWindows names the windows whose widgets exist.
func builtWindows(d *Desktop) []string {
	var out []string
	for name, built := range map[string]bool{
		"review":          d.review.built(),
		"settings":        d.settings.content != nil,
		"audit":           d.audit.content != nil,
		"connect":         d.connect.content != nil,
		"main":            d.home.content != nil,
		"getting started": d.guide.content != nil,
		"help":            d.help.win != nil,
		"about":           d.about.win != nil,
	} {
		if built {
			out = append(out, name)
		}
	}
	return out
}

// TestIdleTrayBuildsNoWindow: a tray app nobody has needed yet has built no
// window and laid out no text, so it has parsed no font; the first call
// builds the review window and shows it at once.
func TestIdleTrayBuildsNoWindow(t *testing.T) {
	ta := newTrayApp(t)
	fonts := &fontCounter{Theme: test.Theme()}
	ta.Settings().SetTheme(fonts) // also empties Fyne's font cache
	q := newRealQueue(t, time.Hour)
	h := &harness{t: t, q: q, clock: clocktest.New(T0), ui: &uiQueue{wake: make(chan struct{}, 1)},
		settings: newFakeSettings(), audit: &fakeAudit{}}
	h.d = New(ta, Options{Queue: q, Settings: h.settings, Audit: h.audit, Tray: true, Now: h.clock.Now, Do: h.ui.do})
	h.d.start()
	h.d.tray.install(ta)
	t.Cleanup(h.d.stop)
	h.settle()
	// What an idle tray app does: its servers known, the clock ticking,
	// the menu updated, pause turned on and off from the menu.
	h.waitFor("the servers in the menu", func() bool { return h.d.tray.servers == 2 })
	for range 3 {
		h.d.tick()
	}
	h.d.tray.pause.Action()
	h.d.tray.pause.Action()
	h.clock.Advance(trayRefresh)
	h.d.tray.update()
	if got := ta.lastMenu(); got != "No calls waiting · 2 servers" {
		t.Errorf("tray status %q", got)
	}

	if got := builtWindows(h.d); len(got) != 0 {
		t.Errorf("an idle tray app built windows: %v", got)
	}
	if n := fonts.asked.Load(); n != 0 {
		t.Errorf("an idle tray app loaded %d fonts", n)
	}

	q.submit(createIssue("", time.Time{}))
	h.waitFor("the review window", func() bool { return h.d.review.visible && h.d.review.win.Content().Visible() })
	if got := len(visibleRows(h.d.review)); got != 1 {
		t.Errorf("%d rows shown for the first call", got)
	}
	if got := h.d.review.count.Text; got != "1 call waiting" {
		t.Errorf("count %q", got)
	}
	if got := builtWindows(h.d); len(got) != 1 || got[0] != "review" {
		t.Errorf("built %v for the first call, want only the review window", got)
	}
	if fonts.asked.Load() == 0 {
		t.Error("the review window drew no text, or fonts are not counted")
	}
}
