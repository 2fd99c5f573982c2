package ui

import (
	"context"
	"flag"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"github.com/google/go-cmp/cmp"

	"github.com/countersign/countersign/internal/app"
)

// fakeOutside is the settings service's side of a change made to the
// settings file outside the app.
type fakeOutside struct {
	pending *app.SettingsChange
	answers []string // "apply 7", "keep 7"
	signal  chan struct{}
	refuse  error
}

func (f *fakeSettings) PendingChange(context.Context) (app.SettingsChange, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.outside.pending == nil {
		return app.SettingsChange{}, false
	}
	return *f.outside.pending, true
}

func (f *fakeSettings) answer(verb string, id uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.outside.refuse != nil {
		return f.outside.refuse
	}
	if f.outside.pending == nil || f.outside.pending.ID != id {
		return errString("The settings file changed again since these changes were shown. Look at the new changes.")
	}
	f.outside.answers = append(f.outside.answers, verb)
	f.outside.pending = nil
	return nil
}

func (f *fakeSettings) ApplyOutsideChange(_ context.Context, id uint64) error {
	return f.answer("apply", id)
}

func (f *fakeSettings) KeepCurrentSettings(_ context.Context, id uint64) error {
	return f.answer("keep", id)
}

func (f *fakeSettings) OutsideChanges() (<-chan struct{}, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.outside.signal == nil {
		f.outside.signal = make(chan struct{}, 1)
	}
	return f.outside.signal, func() {}
}

// changeOutside makes a change wait, as the watcher would on finding it,
// and signals the interface.
func (f *fakeSettings) changeOutside(c app.SettingsChange) {
	f.mu.Lock()
	f.outside.pending = &c
	if f.outside.signal == nil {
		f.outside.signal = make(chan struct{}, 1)
	}
	sig := f.outside.signal
	f.mu.Unlock()
	select {
	case sig <- struct{}{}:
	default:
	}
}

var unhidden = app.SettingsChange{ID: 7, Changes: []app.SettingsChangeLine{
	{Text: "GitHub: delete_repository is no longer hidden", Widens: true},
	{Text: "GitHub: allowlist added DEFRA/*", Widens: true},
	{Text: "GitHub: allowlist removed me/scratch"},
}}

// TestOutsideChangePanel: a change made outside Countersign opens the
// settings window with a panel listing it, and the tray offers "Review
// settings change…"; Keep my current settings answers it and the panel
// goes.
func TestOutsideChangePanel(t *testing.T) {
	h, ta := newTrayHarness(t, newFixedQueue(t))
	h.settings.changeOutside(unhidden)
	s := h.d.settings
	h.waitFor("the panel", func() bool { return s.havePending && s.win != nil && s.win.Content().Visible() })
	h.settle()
	if !s.outside.Visible() || !hasText(s.outside, "delete_repository is no longer hidden") {
		t.Fatal("the settings window does not show the waiting change")
	}
	if !hasMenuItem(h, "Review settings change…") {
		t.Fatal("the tray has no Review settings change… item")
	}
	h.clock.Advance(time.Second)
	h.waitFor("the tray menu", func() bool {
		return ta.lastMenu() == "No calls waiting · 2 servers · settings change waiting"
	})
	assertMarkup(t, "settings_outside_change.xml", s.window().Canvas())
	capturePNG(t, s.window(), "settings_outside_change.png")

	keep := buttons(s.outside, "Keep my current settings")
	if len(keep) != 1 || len(buttons(s.outside, "Apply these changes")) != 1 {
		t.Fatal("the panel lacks its two buttons")
	}
	test.Tap(keep[0])
	h.waitFor("the answer", func() bool { return !s.havePending })
	h.settle()
	if diff := cmp.Diff([]string{"keep"}, h.settings.outside.answers); diff != "" {
		t.Fatalf("answers (-want +got)\n%s", diff)
	}
	if s.outside.Visible() || hasMenuItem(h, "Review settings change…") {
		t.Fatal("the panel or the tray item stayed after the answer")
	}
	if s.status.Text != "Kept your current settings: the settings file has them again." {
		t.Fatalf("status %q", s.status.Text)
	}
}

func TestOutsideChangeApplyAndReplaced(t *testing.T) {
	h := newHarness(t, newFixedQueue(t))
	h.settings.changeOutside(unhidden)
	s := h.d.settings
	h.waitFor("the panel", func() bool { return s.havePending })
	apply := buttons(s.outside, "Apply these changes")
	// Another change replaces the one shown before the person answers.
	newer := unhidden
	newer.ID = 8
	h.settings.mu.Lock()
	h.settings.outside.pending = &newer
	h.settings.mu.Unlock()
	test.Tap(apply[0])
	h.waitFor("the refusal", func() bool { return s.status.Text != "Applying the changes…" && s.status.Text != "" })
	if s.status.Text != "The settings file changed again since these changes were shown. Look at the new changes." {
		t.Fatalf("status %q", s.status.Text)
	}
	if len(h.settings.outside.answers) != 0 || !s.havePending || s.pending.ID != 8 {
		t.Fatalf("answered a change the person was not shown: %v, pending %+v", h.settings.outside.answers, s.pending)
	}
	test.Tap(buttons(s.outside, "Apply these changes")[0])
	h.waitFor("the answer", func() bool { return !s.havePending })
	if diff := cmp.Diff([]string{"apply"}, h.settings.outside.answers); diff != "" {
		t.Fatalf("answers (-want +got)\n%s", diff)
	}
}

func hasMenuItem(h *harness, label string) bool {
	for _, it := range h.d.tray.menu.Items {
		if it.Label == label {
			return true
		}
	}
	return false
}

var capture = flag.String("capture", "", "write PNGs of windows, rendered headless, to this directory")

// capturePNG renders a window headless with the test driver and, with
// -capture, writes it to that directory for a person to look at.
func capturePNG(t *testing.T, w fyne.Window, name string) {
	t.Helper()
	if *capture == "" {
		return
	}
	img := w.Canvas().Capture()
	dir := *capture
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}

// TestOutsideChangePanelShowsEveryWideningLine: a change that lists many
// narrowing lines before the one that widens (hide eight tools on one
// server, un-hide delete_repository on the next) cannot push that line
// behind "and N more": every widening line shows, first, and only
// narrowing ones are folded away.
func TestOutsideChangePanelShowsEveryWideningLine(t *testing.T) {
	h, _ := newTrayHarness(t, newFixedQueue(t))
	c := app.SettingsChange{ID: 9}
	for i := range 9 {
		c.Changes = append(c.Changes, app.SettingsChangeLine{Text: fmt.Sprintf("Jira: tool_%d is now hidden", i)})
	}
	c.Changes = append(c.Changes, app.SettingsChangeLine{Text: "GitHub: delete_repository is no longer hidden", Widens: true})
	h.settings.changeOutside(c)
	s := h.d.settings
	h.waitFor("the panel", func() bool { return s.havePending && s.win != nil && s.win.Content().Visible() })
	h.settle()
	if !hasText(s.outside, "delete_repository is no longer hidden") {
		t.Fatal("the panel hides the change that widens behind the ones that narrow")
	}
}
