package ui

import (
	"context"
	"log/slog"
	"testing"

	"fyne.io/fyne/v2/test"
	"github.com/google/go-cmp/cmp"

	"github.com/countersign/countersign/internal/app"
	"github.com/countersign/countersign/internal/clocktest"
)

// newGuideHarness is the interface with a Connect service, for "Getting
// started", which looks at servers, AI apps and the audit log.
func newGuideHarness(t *testing.T, conn ConnectService) *harness {
	t.Helper()
	a := test.NewTempApp(t)
	q := newFixedQueue(t)
	h := &harness{t: t, q: q, clock: clocktest.New(T0), ui: &uiQueue{wake: make(chan struct{}, 1)},
		settings: newFakeSettings(), audit: &fakeAudit{}}
	h.d = New(a, Options{Queue: q, Settings: h.settings, Audit: h.audit, Connect: conn, Tray: true,
		Now: h.clock.Now, Do: h.ui.do, Logger: slog.New(slog.DiscardHandler)})
	h.d.start()
	t.Cleanup(h.d.stop)
	h.settle()
	return h
}

// marks are the steps' done marks, as the window shows them.
func marks(g *guideWindow) []string {
	var out []string
	for _, s := range g.steps(g.state) {
		m := "to do"
		if s.Done {
			m = "done"
		}
		out = append(out, m)
	}
	return out
}

// reloadGuide looks at the state again and waits for the window to show it.
func reloadGuide(h *harness) {
	h.t.Helper()
	g := h.d.guide
	g.state.loaded = false
	g.reload()
	h.waitFor("the steps", func() bool { return g.state.loaded && !g.loading })
	h.settle()
}

// TestGettingStartedSteps walks a new user through the four steps: each is
// marked done only once the real state says so, and the window is golden
// at each stage.
func TestGettingStartedSteps(t *testing.T) {
	conn := &fakeConnect{ov: app.ConnectOverview{Hosts: []app.HostState{
		{ID: "vscode", Name: "VS Code", Path: "/home/me/.config/Code/User/mcp.json", State: "Installed", Editable: true},
	}}}
	h := newGuideHarness(t, conn)
	h.settings.mu.Lock()
	all := h.settings.servers
	h.settings.servers = nil
	h.settings.mu.Unlock()
	h.d.showGuide()
	g := h.d.guide
	if !g.visible {
		t.Fatal("Getting started did not open")
	}
	h.waitFor("the steps", func() bool { return g.state.loaded && !g.loading })
	h.settle()

	stages := []struct {
		name   string
		change func()
		want   []string
	}{
		{"guide_new.xml", func() {}, []string{"to do", "to do", "to do", "to do"}},
		{"guide_server_added.xml", func() {
			h.settings.mu.Lock()
			h.settings.servers = all[:1] // GitHub, not signed in
			h.settings.mu.Unlock()
		}, []string{"done", "to do", "to do", "to do"}},
		{"guide_signed_in.xml", func() {
			h.settings.mu.Lock()
			h.settings.signedIn["github"] = true
			h.settings.servers = all // and a local server, which needs no sign-in
			h.settings.mu.Unlock()
		}, []string{"done", "done", "to do", "to do"}},
		{"guide_connected.xml", func() {
			conn.mu.Lock()
			conn.ov.Hosts[0].Connected = []string{"github"}
			conn.mu.Unlock()
		}, []string{"done", "done", "done", "to do"}},
		{"guide_done.xml", func() {
			h.audit.mu.Lock()
			// A timeout is not the person trying a call; their approval is.
			h.audit.events = []app.AuditEvent{
				{ID: 3, Kind: "Decided", Server: "github", Tool: "list_issues", Outcome: "timed out", Actor: "timeout"},
				{ID: 2, Kind: "Decided", Server: "github", Tool: "list_issues", Outcome: "approved", Actor: "person"},
			}
			h.audit.mu.Unlock()
		}, []string{"done", "done", "done", "done"}},
	}
	for _, st := range stages {
		st.change()
		reloadGuide(h)
		if diff := cmp.Diff(st.want, marks(g)); diff != "" {
			t.Errorf("%s: marks (-want +got)\n%s", st.name, diff)
		}
		if ready := hasText(g.content, guideReady); ready != (st.name == "guide_done.xml") {
			t.Errorf("%s: says all set = %v", st.name, ready)
		}
		assertMarkup(t, st.name, g.window().Canvas())
		capturePNG(t, g.window(), st.name[:len(st.name)-len(".xml")]+".png")
	}
}

// TestGettingStartedTimeoutsAreNotATry: calls that only timed out leave
// "Try a test call" to do.
func TestGettingStartedTimeoutsAreNotATry(t *testing.T) {
	h := newGuideHarness(t, nil)
	h.audit.events = []app.AuditEvent{{ID: 1, Kind: "Decided", Outcome: "timed out", Actor: "timeout"}}
	h.d.showGuide()
	reloadGuide(h)
	steps := h.d.guide.steps(h.d.guide.state)
	if steps[3].Done {
		t.Error("a timed-out call marked Try a test call done")
	}
	if steps[2].Done || !hasText(h.d.guide.content, "not available") {
		t.Error("without a Connect service the step should say it is not available")
	}
}

// TestGettingStartedButtons: each step's button does what it says.
func TestGettingStartedButtons(t *testing.T) {
	h := newGuideHarness(t, &fakeConnect{})
	h.d.showGuide()
	g := h.d.guide
	reloadGuide(h)

	test.Tap(buttons(g.content, "Add a server…")[0])
	s := h.d.settings
	if s.win == nil || !s.adding.view.Visible() || s.serverList.Visible() {
		t.Fatal("Add a server… did not open the catalog in Settings")
	}
	h.waitFor("the catalog", func() bool { return len(s.adding.choices) > 0 })

	b := buttons(g.content, "Sign in to GitHub…")
	if len(b) != 1 {
		t.Fatal("no Sign in to GitHub… button for the server that is not signed in")
	}
	test.Tap(b[0])
	h.waitFor("the sign-in", func() bool {
		h.settings.mu.Lock()
		defer h.settings.mu.Unlock()
		return h.settings.signedIn["github"]
	})
	reloadGuide(h)
	if len(buttons(g.content, "Open Settings…")) != 1 {
		t.Error("once signed in, step 2 should offer Open Settings…")
	}

	test.Tap(buttons(g.content, "Connect your AI app…")[0])
	if h.d.connect.win == nil || !h.d.connect.win.Content().Visible() {
		t.Error("Connect your AI app… did not open the Connect window")
	}
	test.Tap(buttons(g.content, "Open the review window")[0])
	if !h.d.review.visible {
		t.Error("Open the review window did not open it")
	}
	test.Tap(buttons(g.content, "Settings…")[0])
	test.Tap(buttons(g.content, "Close")[0])
	if g.visible {
		t.Error("Close left Getting started open")
	}
}

// TestGettingStartedSignInNeedsAServer: with no server, Sign in says to
// add one first and cannot be pressed.
func TestGettingStartedSignInNeedsAServer(t *testing.T) {
	h := newGuideHarness(t, nil)
	h.settings.servers = nil
	h.d.showGuide()
	reloadGuide(h)
	b := buttons(h.d.guide.content, "Sign in…")
	if len(b) != 1 || !b[0].Disabled() || !hasText(h.d.guide.content, "Add a server first.") {
		t.Fatal("Sign in… should be disabled with a reason while there is no server")
	}
}

// TestGettingStartedWatchesWhileOpen: marks follow the state while the
// window is open, without the person doing anything in it.
func TestGettingStartedWatchesWhileOpen(t *testing.T) {
	h := newGuideHarness(t, nil)
	h.d.showGuide()
	g := h.d.guide
	h.waitFor("the steps", func() bool { return g.state.loaded && !g.loading })
	if g.steps(g.state)[3].Done {
		t.Fatal("tried before any call")
	}
	h.audit.mu.Lock()
	h.audit.events = []app.AuditEvent{{ID: 1, Kind: "Decided", Outcome: "denied", Actor: "person"}}
	h.audit.mu.Unlock()
	for range guidePoll {
		h.d.tick()
	}
	h.waitFor("the new mark", func() bool { return g.steps(g.state)[3].Done })
}

// TestFirstRunShowsGettingStarted: a first run opens Getting started; a
// later run does not.
func TestFirstRunShowsGettingStarted(t *testing.T) {
	for _, first := range []bool{true, false} {
		ta := newTrayApp(t)
		ui := &uiQueue{wake: make(chan struct{}, 1)}
		d := New(ta, Options{Queue: newFixedQueue(t), Settings: newFakeSettings(), Audit: &fakeAudit{}, Tray: true, FirstRun: first, Do: ui.do})
		ta.loop = ui
		done := make(chan error, 1)
		go func() { done <- d.Run(context.Background()) }()
		shown := make(chan bool, 1)
		ui.do(func() { shown <- d.guide.visible; ta.Quit() })
		if got := <-shown; got != first {
			t.Errorf("FirstRun %v: Getting started shown = %v", first, got)
		}
		<-done
	}
}
