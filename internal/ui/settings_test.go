package ui

import (
	"context"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"
	"github.com/google/go-cmp/cmp"

	"github.com/countersign/countersign/internal/app"
)

// openSettings opens the settings window and waits for it to load.
func openSettings(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t, newFixedQueue(t))
	h.d.settings.show()
	h.waitFor("the settings to load", func() bool {
		return len(h.d.settings.servers) == 2 && h.d.settings.allowServer == "github" && len(h.d.settings.allow.Entries) == 2
	})
	return h
}

// hasText reports whether a label inside o shows text containing s.
func hasText(o fyne.CanvasObject, s string) bool {
	for _, x := range test.LaidOutObjects(o) {
		if l, ok := x.(*widget.Label); ok && strings.Contains(l.Text, s) {
			return true
		}
	}
	return false
}

// buttons finds the buttons with a label inside a settings tab.
func buttons(o fyne.CanvasObject, label string) []*widget.Button {
	var out []*widget.Button
	for _, x := range test.LaidOutObjects(o) {
		if b, ok := x.(*widget.Button); ok && b.Text == label {
			out = append(out, b)
		}
	}
	return out
}

func TestSettingsGoldens(t *testing.T) {
	for i, name := range []string{"settings_servers.xml", "settings_allowlists.xml", "settings_general.xml"} {
		t.Run(name, func(t *testing.T) {
			h := openSettings(t)
			h.d.settings.tabs.SelectIndex(i)
			assertMarkup(t, name, h.d.settings.window().Canvas())
		})
	}
}

func TestSettingsSignIn(t *testing.T) {
	h := openSettings(t)
	s := h.d.settings
	signIn := buttons(s.serverBox, "Sign in")
	if len(signIn) != 2 || signIn[0].Disabled() || !signIn[1].Disabled() {
		t.Fatalf("Sign in buttons: want GitHub's enabled and the local server's disabled")
	}
	if !hasText(s.serverBox, "nothing to sign in to") {
		t.Error("the disabled button does not say why")
	}
	test.Tap(signIn[0])
	h.waitFor("signing in", func() bool { return s.status.Text == "Signed in to github." })
	if out := buttons(s.serverBox, "Sign out"); out[0].Disabled() {
		t.Error("Sign out is disabled once signed in")
	}
	if !hasText(s.serverBox, "scopes: repo read:org") {
		t.Error("the granted scopes are not shown")
	}
}

func TestSettingsAllowlist(t *testing.T) {
	h := openSettings(t)
	s := h.d.settings
	if got := buttons(s.allowBox, "Remove"); len(got) != 1 {
		t.Fatalf("%d Remove buttons, want one (the locked entry has none)", len(got))
	}
	steps := []struct {
		text, check string
		canAdd      bool
	}{
		{"", "Type an entry to add it.", false},
		{"/x", "write owner/repository, like DEFRA/ffc-pay or DEFRA/ffc-*", false},
		{"me/scratch", "Already in the list.", false},
		{"DEFRA/ffc-pay", "Looks right: press Add or Enter.", true},
	}
	for _, st := range steps {
		s.allowEntry.SetText(st.text)
		if s.allowCheck.Text != st.check || s.allowAdd.Disabled() == st.canAdd {
			t.Errorf("typing %q: %q, Add enabled %v", st.text, s.allowCheck.Text, !s.allowAdd.Disabled())
		}
	}
	s.allowEntry.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	h.waitFor("the entry to be saved", func() bool { return len(s.allow.Entries) == 3 })
	if got := s.status.Text; got != "Added DEFRA/ffc-pay. Saved." {
		t.Errorf("status %q", got)
	}
	test.Tap(buttons(s.allowBox, "Remove")[0])
	h.waitFor("the removal to be saved", func() bool { return len(s.allow.Entries) == 2 })
	want := [][]string{{"me/scratch", "DEFRA/ffc-pay"}, {"DEFRA/ffc-pay"}}
	if diff := cmp.Diff(want, h.settings.allowSets); diff != "" {
		t.Errorf("saved (-want +got)\n%s", diff)
	}

	h.settings.failSave = errString("the settings file is read-only")
	s.allowEntry.SetText("DEFRA/ffc-doc")
	test.Tap(s.allowAdd)
	h.waitFor("the failure", func() bool { return strings.HasPrefix(s.status.Text, "Not saved") })
	if s.status.Text != "Not saved: the settings file is read-only" {
		t.Errorf("status %q", s.status.Text)
	}

	s.serverPick.SetSelected("Local files (local)")
	h.waitFor("the local server's allowlist", func() bool { return s.allowServer == "local" })
	if !s.allowEntry.Disabled() || !hasText(s.allowBox, "does not touch repositories") {
		t.Error("an allowlist that cannot be edited is editable, or does not say why")
	}
}

func TestSettingsTimeout(t *testing.T) {
	h := openSettings(t)
	s := h.d.settings
	steps := []struct {
		text, check string
		canSave     bool
	}{
		{"5m", "Currently 5m. Type a new time to change it.", false},
		{"soon", "Not saved: write a time such as 90s, 5m or 1h.", false},
		{"1s", "Not saved: at least 10s, so there is time to read a call.", false},
		{"48h", "Not saved: at most 24h.", false},
		{"90s", "Calls arriving from now on will wait 1m30s. Press Save or Enter.", true},
	}
	for _, st := range steps {
		s.timeoutEntry.SetText(st.text)
		if s.timeoutCheck.Text != st.check || s.timeoutSave.Disabled() == st.canSave {
			t.Errorf("typing %q: %q, Save enabled %v", st.text, s.timeoutCheck.Text, !s.timeoutSave.Disabled())
		}
	}
	s.timeoutEntry.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	h.waitFor("the timeout to be saved", func() bool { return s.timeout.Value == 90*time.Second })
	if s.status.Text != "Saved: calls now wait 1m30s for a decision." {
		t.Errorf("status %q", s.status.Text)
	}

	h.settings.timeout.Locked = "Your organisation sets the timeout."
	h.d.settings.reload()
	h.waitFor("the locked timeout", func() bool { return s.timeoutEntry.Disabled() })
	if s.timeoutCheck.Text != "Your organisation sets the timeout." {
		t.Errorf("locked: %q", s.timeoutCheck.Text)
	}
}

func TestSettingsStartAtLogin(t *testing.T) {
	h := openSettings(t)
	s := h.d.settings
	test.Tap(s.login)
	h.waitFor("start at login", func() bool { return s.status.Text == "Countersign will start when you log in." })
	if on, _ := h.settings.StartAtLogin(context.Background()); !on.On {
		t.Error("not turned on")
	}
	h.settings.login = app.LoginSetting{Unavailable: "Not on this system."}
	s.reload()
	h.waitFor("the setting to be unavailable", func() bool { return s.login.Disabled() })
	if s.loginWhy.Text != "Not on this system." || !s.loginWhy.Visible() {
		t.Errorf("why %q shown %v", s.loginWhy.Text, s.loginWhy.Visible())
	}
}
