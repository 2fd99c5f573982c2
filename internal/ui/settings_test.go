package ui

import (
	"context"
	"fmt"
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

// shows reports whether a visible label inside o shows text containing s.
func shows(o fyne.CanvasObject, s string) bool {
	for _, x := range test.LaidOutObjects(o) {
		if l, ok := x.(*widget.Label); ok && l.Visible() && strings.Contains(l.Text, s) {
			return true
		}
	}
	return false
}

// labelsText is the text of every visible label inside o.
func labelsText(o fyne.CanvasObject) []string {
	var out []string
	for _, x := range test.LaidOutObjects(o) {
		if l, ok := x.(*widget.Label); ok && l.Visible() {
			out = append(out, l.Text)
		}
	}
	return out
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
	h.waitFor("signing in", func() bool { return hasText(s.serverBox, "Signed in to GitHub.") })
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

	s.serverPick.SetSelected("Local files")
	h.waitFor("the local server's allowlist", func() bool { return s.allowServer == "local" })
	if !s.allowEntry.Disabled() || !hasText(s.allowBox, "does not touch repositories") {
		t.Error("an allowlist that cannot be edited is editable, or does not say why")
	}
}

func TestSettingsTimeout(t *testing.T) {
	h := openSettings(t)
	s := h.d.settings
	want := []string{"30 seconds", "1 minute", "2 minutes", "5 minutes", "10 minutes", "15 minutes", "30 minutes",
		"1 hour", "2 hours", "4 hours", "8 hours", "24 hours"}
	if diff := cmp.Diff(want, s.timeoutPick.Options); diff != "" {
		t.Errorf("timeouts offered (-want +got)\n%s", diff)
	}
	if s.timeoutPick.Selected != "5 minutes" {
		t.Errorf("selected %q, want the current 5 minutes", s.timeoutPick.Selected)
	}
	s.timeoutPick.SetSelected("1 hour")
	h.waitFor("the timeout to be saved", func() bool { return s.timeout.Value == time.Hour })
	if s.status.Text != "Saved: calls now wait 1 hour for a decision." {
		t.Errorf("status %q", s.status.Text)
	}

	// A value set elsewhere that is not one of the usual ones is kept.
	h.settings.timeout.Value = 90 * time.Second
	h.d.settings.reload()
	h.waitFor("the odd timeout", func() bool { return s.timeoutPick.Selected == "1 minute 30 seconds" })

	h.settings.timeout.Locked = "Your organisation sets the timeout."
	h.d.settings.reload()
	h.waitFor("the locked timeout", func() bool { return s.timeoutPick.Disabled() })
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

// A failed sign-in says on the server's own card what happened and what to
// do, with the raw error only behind "Technical details"; the message does
// not follow the person onto another tab.
func TestSettingsSignInFailureIsPlainAndStaysOnItsCard(t *testing.T) {
	h := openSettings(t)
	s := h.d.settings
	const plain = "Countersign couldn't reach GitHub. Check your network or VPN, then press Sign in again."
	const raw = `signing in to GitHub: reading protected resource metadata: Get "https://api.githubcopilot.com/.well-known/oauth-protected-resource/mcp": dial tcp: lookup api.githubcopilot.com on 10.255.255.53:53: no such host`
	h.settings.mu.Lock()
	h.settings.signInErr = &app.Problem{Message: plain, Detail: raw}
	h.settings.servers[0].State = "Not signed in: " + plain // as the app reports the state after the failure
	h.settings.mu.Unlock()
	test.Tap(buttons(s.serverBox, "Sign in")[0])
	h.waitFor("the failure", func() bool { return hasText(s.serverBox, plain) })
	if shows(s.serverBox, "dial tcp") || hasText(s.status, "dial tcp") {
		t.Fatal("the raw error is shown before Technical details is pressed")
	}
	if n := strings.Count(fmt.Sprint(labelsText(s.serverBox)), plain); n != 1 {
		t.Errorf("the message is shown %d times on the card, want once", n)
	}
	if s.status.Visible() && s.status.Text != "" {
		t.Errorf("the window's status line repeats the card's message: %q", s.status.Text)
	}
	details := buttons(s.serverBox, "Technical details")
	if len(details) != 1 {
		t.Fatalf("%d Technical details buttons, want one", len(details))
	}
	capturePNG(t, s.window(), "signin_error.png")
	test.Tap(details[0])
	capturePNG(t, s.window(), "signin_error_details.png")
	if !shows(s.serverBox, "10.255.255.53") {
		t.Error("Technical details does not show the raw error")
	}

	// A message of the Allowlists tab stays there.
	s.tabs.SelectIndex(1)
	s.setStatus("Added DEFRA/ffc-pay. Saved.", widget.SuccessImportance)
	s.tabs.SelectIndex(2)
	if s.status.Visible() {
		t.Error("the Allowlists tab's message follows the person onto General")
	}
	s.tabs.SelectIndex(1)
	if !s.status.Visible() {
		t.Error("the Allowlists tab's message is gone when coming back to it")
	}
}

// A read of the servers' states that arrives after a newer one is shown is
// dropped: a row does not go back to "Signing in…" after the sign-in ended.
func TestSettingsDropsAnOlderReadOfTheServers(t *testing.T) {
	h := openSettings(t)
	s := h.d.settings
	ctx := context.Background()
	h.settings.mu.Lock()
	h.settings.servers[0].State = "Signing in…"
	h.settings.mu.Unlock()
	_, older, _ := s.readServers(ctx)
	h.settings.mu.Lock()
	h.settings.servers[0].State = "Not signed in: Countersign couldn't reach GitHub."
	h.settings.mu.Unlock()
	_, newer, _ := s.readServers(ctx)
	if !s.fresh(newer) {
		t.Fatal("the newest read is refused")
	}
	if s.fresh(older) {
		t.Fatal("an older read would replace the newer one shown")
	}
}

// A list holding Jira projects and Confluence spaces asks which one an
// entry names: nobody has to know to write "jira:" or "confluence:".
func TestSettingsAllowlistChoosesTheKind(t *testing.T) {
	h := newHarness(t, newFixedQueue(t))
	h.settings.mu.Lock()
	h.settings.servers = append(h.settings.servers, app.ServerStatus{ID: "atlassian", Name: "Atlassian", State: "Signed in"})
	h.settings.allow["atlassian"] = app.Allowlist{Kind: "Jira projects or Confluence spaces",
		Entries: []app.AllowEntry{{Pattern: "jira:FFC", Locked: true}},
		Kinds: []app.AllowKind{{Prefix: "jira", Noun: "Jira project", Example: "FFC*"},
			{Prefix: "confluence", Noun: "Confluence space", Example: "ENG"}}}
	h.settings.mu.Unlock()
	s := h.d.settings
	s.show()
	h.waitFor("the settings to load", func() bool { return len(s.servers) == 3 })
	s.serverPick.SetSelected("Atlassian")
	h.waitFor("Atlassian's allowlist", func() bool { return s.allowServer == "atlassian" && len(s.allow.Kinds) == 2 })
	if !s.allowKind.Visible() || s.allowKind.Selected != "Jira project" {
		t.Fatalf("kind chooser visible %v, selected %q", s.allowKind.Visible(), s.allowKind.Selected)
	}
	if !hasText(s.allowBox, "FFC (Jira project)") || hasText(s.allowBox, "jira:") {
		t.Error("the list shows the prefix instead of the kind in words")
	}
	s.allowKind.SetSelected("Confluence space")
	if s.allowEntry.PlaceHolder != "e.g. ENG" {
		t.Errorf("placeholder %q, want the Confluence example", s.allowEntry.PlaceHolder)
	}
	s.allowEntry.SetText("DOCS")
	test.Tap(s.allowAdd)
	h.waitFor("the entry to be saved", func() bool { return len(s.allow.Entries) == 2 })
	if diff := cmp.Diff([][]string{{"confluence:DOCS"}}, h.settings.allowSets); diff != "" {
		t.Errorf("saved (-want +got)\n%s", diff)
	}
	if s.status.Text != "Added DOCS (Confluence space). Saved." {
		t.Errorf("status %q", s.status.Text)
	}
}
