package ui

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"
	"github.com/google/go-cmp/cmp"

	"github.com/countersign/countersign/internal/app"
	"github.com/countersign/countersign/internal/clocktest"
	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/hosts"
)

// fakeConnect is a ConnectService in memory, with fixed paths for goldens.
// It makes the same checks as the real one where the window relies on
// them: Apply only the previewed change, Disable only direct entries.
type fakeConnect struct {
	mu       sync.Mutex
	ov       app.ConnectOverview
	previews [][]string // servers asked for, per Preview
	applied  [][]string
	failNext error
}

// AdminSnippets is a fixed text standing for the lockdown snippets.
func (f *fakeConnect) AdminSnippets(context.Context) (string, error) {
	return "== VS Code: No auto-approval of tools\n\n\"ChatToolsAutoApprove\"=dword:00000000\n", nil
}

func (f *fakeConnect) Overview(context.Context) (app.ConnectOverview, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ov := f.ov
	ov.Hosts = slices.Clone(ov.Hosts)
	for i := range ov.Hosts {
		h := &ov.Hosts[i]
		h.Connected, h.Direct, h.Disabled = slices.Clone(h.Connected), slices.Clone(h.Direct), slices.Clone(h.Disabled)
	}
	return ov, nil
}

func (f *fakeConnect) hostLocked(id string) (*app.HostState, error) {
	for i := range f.ov.Hosts {
		if f.ov.Hosts[i].ID == id {
			if !f.ov.Hosts[i].Editable {
				return nil, fmt.Errorf("%s can't be changed", id)
			}
			return &f.ov.Hosts[i], nil
		}
	}
	return nil, fmt.Errorf("unknown AI app %q", id)
}

// diffFor is the change from the connected servers to want.
func diffFor(h *app.HostState, want []string) string {
	var b strings.Builder
	for _, id := range h.Connected {
		if !slices.Contains(want, id) {
			fmt.Fprintf(&b, "-    \"countersign-%s\": {…},\n", id)
		}
	}
	for _, id := range want {
		if !slices.Contains(h.Connected, id) {
			fmt.Fprintf(&b, "+    \"countersign-%s\": {\"url\": \"http://127.0.0.1:39217/servers/%s/mcp\", \"headers\": {\"Authorization\": \"Bearer ********\"}},\n", id, id)
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return "--- " + h.Path + "\n+++ " + h.Path + "\n@@ -1,3 +1,4 @@\n" + b.String()
}

func (f *fakeConnect) Preview(_ context.Context, host string, servers []string) (app.ConnectPreview, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.previews = append(f.previews, servers)
	if err := f.failNext; err != nil {
		f.failNext = nil
		return app.ConnectPreview{}, err
	}
	h, err := f.hostLocked(host)
	if err != nil {
		return app.ConnectPreview{}, err
	}
	p := app.ConnectPreview{Host: host, Path: h.Path, Diff: diffFor(h, servers)}
	if strings.Contains(p.Diff, "Bearer") {
		p.Note = app.PrivateFileNote
	}
	return p, nil
}

func (f *fakeConnect) Apply(_ context.Context, host string, servers []string, previewed string) (app.ConnectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failNext; err != nil {
		f.failNext = nil
		return app.ConnectResult{}, err
	}
	h, err := f.hostLocked(host)
	if err != nil {
		return app.ConnectResult{}, err
	}
	if diffFor(h, servers) != previewed {
		return app.ConnectResult{}, app.ErrPreviewStale
	}
	f.applied = append(f.applied, servers)
	h.Connected = slices.Clone(servers)
	return app.ConnectResult{Host: host, Path: h.Path, Backup: h.Path + ".countersign-backup-20261121T100000Z", Diff: previewed}, nil
}

func (f *fakeConnect) Disable(_ context.Context, host string, names []string) (app.ConnectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h, err := f.hostLocked(host)
	if err != nil {
		return app.ConnectResult{}, err
	}
	for _, n := range names {
		i := slices.IndexFunc(h.Direct, func(d app.DirectEntry) bool { return d.Name == n })
		if i < 0 {
			return app.ConnectResult{}, fmt.Errorf("%q is not a direct connection", n)
		}
		h.Direct = slices.Delete(h.Direct, i, i+1)
		h.Disabled = append(h.Disabled, app.DirectEntry{Name: n, DisabledAt: T0})
	}
	return app.ConnectResult{Host: host, Path: h.Path, Backup: h.Path + ".countersign-backup-20261121T100000Z", Sidecar: h.Path + ".countersign-disabled.json"}, nil
}

func (f *fakeConnect) Enable(_ context.Context, host string, names []string) (app.ConnectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h, err := f.hostLocked(host)
	if err != nil {
		return app.ConnectResult{}, err
	}
	for _, n := range names {
		i := slices.IndexFunc(h.Disabled, func(d app.DirectEntry) bool { return d.Name == n })
		if i < 0 {
			return app.ConnectResult{}, fmt.Errorf("%q was not turned off", n)
		}
		h.Disabled = slices.Delete(h.Disabled, i, i+1)
		h.Direct = append(h.Direct, app.DirectEntry{Name: n, Server: "github", ServerName: "GitHub", Reason: "connects to api.githubcopilot.com"})
	}
	return app.ConnectResult{Host: host, Path: h.Path, Backup: h.Path + ".countersign-backup-20261121T100100Z", Sidecar: h.Path + ".countersign-disabled.json"}, nil
}

func (f *fakeConnect) RouteAll(ctx context.Context) ([]app.ConnectResult, error) {
	f.mu.Lock()
	var hosts []string
	for _, h := range f.ov.Hosts {
		if len(h.Direct) > 0 {
			hosts = append(hosts, h.ID)
		}
	}
	f.mu.Unlock()
	var out []app.ConnectResult
	for _, id := range hosts {
		f.mu.Lock()
		h, _ := f.hostLocked(id)
		var names []string
		for _, d := range h.Direct {
			names = append(names, d.Name)
			if !slices.Contains(h.Connected, d.Server) {
				h.Connected = append(h.Connected, d.Server)
			}
		}
		f.mu.Unlock()
		r, err := f.Disable(ctx, id, names)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

var connectServers = []app.ConnectServer{{ID: "github", Name: "GitHub"}, {ID: "jira", Name: "Jira"}}

const (
	claudePath = "/home/sam/.config/Claude/claude_desktop_config.json"
	vscodePath = "/home/sam/.config/Code/User/mcp.json"
	cursorPath = "/home/sam/.cursor/mcp.json"
)

func claudeFound() app.HostState {
	return app.HostState{ID: "claude-desktop", Name: "Claude Desktop", Path: claudePath, State: "Found", Editable: true,
		Via: "Claude Desktop starts countersign-bridge (/opt/countersign/countersign-bridge) for each server.", Connected: []string{"github"}}
}

func cursorFound() app.HostState {
	return app.HostState{ID: "cursor", Name: "Cursor", Path: cursorPath, State: "Found", Editable: true,
		Via: "Cursor connects to http://127.0.0.1:39217/servers/<server>/mcp with Countersign's private token."}
}

// The states the goldens show.
var connectStates = map[string]app.ConnectOverview{
	"found": {Servers: connectServers, Hosts: []app.HostState{claudeFound(), cursorFound()}},
	"missing": {Servers: connectServers, Hosts: []app.HostState{
		{ID: "claude-desktop", Name: "Claude Desktop", Path: claudePath, State: "Not installed",
			Why: "Claude Desktop is not installed for this user."},
		{ID: "vscode", Name: "VS Code", Path: vscodePath, State: "Installed, with no tools connected yet: connecting creates its settings file",
			Editable: true, Via: "VS Code connects to http://127.0.0.1:39217/servers/<server>/mcp with Countersign's private token."},
	}},
	"malformed": {Servers: connectServers, Hosts: []app.HostState{
		{ID: "vscode", Name: "VS Code", Path: vscodePath, State: "Its configuration file has a mistake",
			Why:     "Countersign won't change this file until it is fixed. Correct it in VS Code or a text editor, then refresh.",
			Problem: vscodePath + ": line 4, column 3: invalid character '\"' after object value"},
	}},
	"direct": {Servers: connectServers, Hosts: []app.HostState{
		func() app.HostState {
			h := claudeFound()
			h.Direct = []app.DirectEntry{{Name: "github", Server: "github", ServerName: "GitHub", Reason: "runs ghcr.io/github/github-mcp-server"}}
			h.Disabled = []app.DirectEntry{{Name: "jira", DisabledAt: T0.Add(-24 * time.Hour)}}
			return h
		}(),
		func() app.HostState {
			h := cursorFound()
			h.Direct = []app.DirectEntry{{Name: "ado", Server: "azure-devops", ServerName: "Azure DevOps", Reason: "connects to mcp.dev.azure.com"}}
			return h
		}(),
	}},
}

// newConnectHarness is the interface with svc as its Connect service.
func newConnectHarness(t *testing.T, svc ConnectService) *harness {
	t.Helper()
	a := test.NewTempApp(t)
	q := newFixedQueue(t)
	h := &harness{t: t, q: q, clock: clocktest.New(T0), ui: &uiQueue{wake: make(chan struct{}, 1)},
		settings: newFakeSettings(), audit: &fakeAudit{}}
	h.d = New(a, Options{Queue: q, Settings: h.settings, Audit: h.audit, Connect: svc, Tray: true,
		Now: h.clock.Now, Do: h.ui.do, Logger: slog.New(slog.DiscardHandler)})
	h.d.start()
	t.Cleanup(h.d.stop)
	h.settle()
	return h
}

// openConnect opens the window on a copy of a state and waits for it.
func openConnect(t *testing.T, state string) (*harness, *fakeConnect) {
	t.Helper()
	f := &fakeConnect{}
	ov, _ := (&fakeConnect{ov: connectStates[state]}).Overview(context.Background())
	f.ov = ov
	h := newConnectHarness(t, f)
	h.d.showConnect()
	h.waitFor("the AI apps to load", func() bool { return h.d.connect.loaded && !h.d.connect.busy })
	return h, f
}

// button finds the enabled-or-not button with a label in the window, the
// n-th when there are several.
func connectButton(t *testing.T, h *harness, label string, n int) *widget.Button {
	t.Helper()
	bs := buttons(h.d.connect.body, label)
	if len(bs) <= n {
		t.Fatalf("%d %q buttons, want at least %d", len(bs), label, n+1)
	}
	return bs[n]
}

func connectCheck(t *testing.T, h *harness, label string, n int) *widget.Check {
	t.Helper()
	var cs []*widget.Check
	for _, o := range test.LaidOutObjects(h.d.connect.body) {
		if c, ok := o.(*widget.Check); ok && c.Text == label {
			cs = append(cs, c)
		}
	}
	if len(cs) <= n {
		t.Fatalf("%d %q boxes, want at least %d", len(cs), label, n+1)
	}
	return cs[n]
}

func (h *harness) idle() {
	h.t.Helper()
	h.waitFor("the window to finish", func() bool { return !h.d.connect.busy })
	h.settle()
}

func TestConnectGoldens(t *testing.T) {
	for _, state := range []string{"found", "missing", "malformed", "direct"} {
		t.Run(state, func(t *testing.T) {
			h, _ := openConnect(t, state)
			assertMarkup(t, "connect_"+state+".xml", h.d.connect.window().Canvas())
		})
	}
}

func TestConnectPreviewThenApply(t *testing.T) {
	h, f := openConnect(t, "found")
	c := h.d.connect
	apply := connectButton(t, h, "Apply", 1)
	if !apply.Disabled() || !hasText(c.body, "Press Preview to see exactly what will change") {
		t.Fatal("Apply is usable before a preview, or does not say why not")
	}

	// Cursor: tick Jira, preview, see the change, apply it.
	test.Tap(connectCheck(t, h, "Jira", 1))
	test.Tap(connectButton(t, h, "Preview", 1))
	h.idle()
	if !shows(c.body, "Cursor will reach Jira through Countersign.") {
		t.Fatal("the preview does not say in a sentence what changes")
	}
	if hasText(c.body, `+    "countersign-jira"`) {
		t.Fatal("the diff is shown before the person asks for it")
	}
	test.Tap(connectButton(t, h, "Show the exact change", 0))
	if !hasText(c.body, `+    "countersign-jira"`) || !hasText(c.body, "Bearer ********") {
		t.Fatal("the preview does not show the diff")
	}
	if !hasText(c.body, "This file will be readable only by you, because it holds Countersign's access key.") {
		t.Fatal("the preview does not say the file becomes readable only by the person")
	}
	assertMarkup(t, "connect_preview.xml", c.window().Canvas())
	capturePNG(t, c.window(), "connect_preview.png")
	apply = connectButton(t, h, "Apply", 1)
	if apply.Disabled() {
		t.Fatal("Apply is disabled after a preview with changes")
	}
	test.Tap(apply)
	h.idle()
	if diff := cmp.Diff([][]string{{"jira"}}, f.applied); diff != "" {
		t.Errorf("applied (-want +got):\n%s", diff)
	}
	want := "Saved " + cursorPath + ". The previous version is kept as " + cursorPath + ".countersign-backup-20261121T100000Z."
	if !hasText(c.body, want) {
		t.Errorf("the result does not name the file and its backup")
	}
	if !strings.HasPrefix(c.status.Text, "Saved. Restart Cursor") {
		t.Errorf("status %q", c.status.Text)
	}
	if !connectCheck(t, h, "Jira", 1).Checked || !connectButton(t, h, "Apply", 1).Disabled() {
		t.Error("after applying, the box does not show the file's state or Apply is still usable")
	}
	assertMarkup(t, "connect_applied.xml", c.window().Canvas())

	// Changing a box drops the preview: Apply needs a new one.
	test.Tap(connectButton(t, h, "Preview", 0))
	h.idle()
	if !hasText(c.body, "Nothing to change: the file already matches") || !connectButton(t, h, "Apply", 0).Disabled() {
		t.Error("a preview without changes leaves Apply usable, or does not say so")
	}
	test.Tap(connectCheck(t, h, "GitHub", 0))
	test.Tap(connectButton(t, h, "Preview", 0))
	h.idle()
	test.Tap(connectCheck(t, h, "Jira", 0))
	if !connectButton(t, h, "Apply", 0).Disabled() {
		t.Error("Apply is usable for a choice that was not previewed")
	}
}

func TestConnectShowsFailures(t *testing.T) {
	h, f := openConnect(t, "found")
	c := h.d.connect
	f.failNext = errString("reading /home/sam/.cursor/mcp.json: permission denied")
	test.Tap(connectCheck(t, h, "GitHub", 1))
	test.Tap(connectButton(t, h, "Preview", 1))
	h.idle()
	if !hasText(c.body, "Can't preview: reading /home/sam/.cursor/mcp.json: permission denied") || !connectButton(t, h, "Apply", 1).Disabled() {
		t.Error("a failed preview is not shown, or Apply is usable")
	}

	// The file changes between preview and apply: the person is told.
	test.Tap(connectButton(t, h, "Preview", 1))
	h.idle()
	f.mu.Lock()
	f.ov.Hosts[1].Connected = []string{"jira"}
	f.mu.Unlock()
	test.Tap(connectButton(t, h, "Apply", 1))
	h.idle()
	if !hasText(c.body, "Not changed: "+app.ErrPreviewStale.Error()) {
		t.Error("a stale preview is not reported")
	}
	if len(f.applied) != 0 {
		t.Errorf("applied %v", f.applied)
	}
}

func TestConnectMalformedCannotBeChanged(t *testing.T) {
	h, _ := openConnect(t, "malformed")
	c := h.d.connect
	if bs := buttons(c.body, "Preview"); len(bs) != 0 {
		t.Error("a malformed file offers Preview")
	}
	if bs := buttons(c.body, "Apply"); len(bs) != 0 {
		t.Error("a malformed file offers Apply")
	}
	if !hasText(c.body, "line 4, column 3") || !hasText(c.body, "won't change this file until it is fixed") {
		t.Error("the problem or what to do is not shown")
	}
}

func TestConnectDisableAndReEnable(t *testing.T) {
	h, f := openConnect(t, "direct")
	c := h.d.connect
	if n := len(buttons(c.body, "Disable")); n != 2 {
		t.Fatalf("%d Disable buttons, want 2", n)
	}
	test.Tap(connectButton(t, h, "Disable", 0))
	h.idle()
	if n := len(buttons(c.body, "Disable")); n != 1 {
		t.Errorf("%d Disable buttons after disabling one, want 1", n)
	}
	if c.status.Text != "Disabled “github” in Claude Desktop. Restart it so it picks up the change." {
		t.Errorf("status %q", c.status.Text)
	}
	f.mu.Lock()
	disabled := len(f.ov.Hosts[0].Disabled)
	f.mu.Unlock()
	if disabled != 2 {
		t.Errorf("%d entries turned off in the service, want 2", disabled)
	}
	test.Tap(connectButton(t, h, "Re-enable", 0))
	h.idle()
	if !strings.HasPrefix(c.status.Text, "Re-enabled “jira” in Claude Desktop") {
		t.Errorf("status %q", c.status.Text)
	}
	if !hasText(c.body, "Saved "+claudePath+". The previous version is kept as") {
		t.Error("the saved file and backup are not shown")
	}
}

func TestConnectWithoutService(t *testing.T) {
	h := newConnectHarness(t, nil)
	h.d.showConnect()
	h.settle()
	if !h.d.connect.reload.Disabled() || !hasText(h.d.connect.body, "not available in this build") {
		t.Error("without a service the window has a live button or does not say why")
	}
}

// TestConnectWithRealFiles drives the window over the real service and
// real files: tick, preview, apply, and the file on disk has the entry.
func TestConnectWithRealFiles(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(filepath.Join(home, ".cursor"), 0o700); err != nil {
		t.Fatal(err)
	}
	cursor := filepath.Join(home, ".cursor", "mcp.json")
	if err := os.WriteFile(cursor, []byte("{\n  \"mcpServers\": {\n    \"github\": {\"url\": \"https://api.githubcopilot.com/mcp/\"}\n  }\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	user, err := config.Parse([]byte(`{"version": 2, "servers": [{"id": "github", "name": "GitHub", "kind": "github"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	eff := config.Resolve(user, nil, config.Checks{})
	token := strings.Repeat("s3cr3t", 8)
	svc := app.NewConnect(app.ConnectDeps{
		Current: func() *config.Effective { return eff }, BridgePath: filepath.Join(dir, "countersign-bridge"),
		Port: 39217, Token: token, Log: slog.New(slog.DiscardHandler),
		Env: func() (hosts.Env, error) { return hosts.Env{GOOS: "linux", Home: home}, nil },
	})
	h := newConnectHarness(t, svc)
	c := h.d.connect
	h.d.showConnect()
	h.waitFor("the AI apps to load", func() bool { return c.loaded && !c.busy })

	// Cursor is the last of the four hosts; the only editable one.
	test.Tap(connectCheck(t, h, "GitHub", 0))
	test.Tap(connectButton(t, h, "Preview", 0))
	h.idle()
	test.Tap(connectButton(t, h, "Show the exact change", 0))
	if !hasText(c.body, "Bearer ********") || hasText(c.body, token) {
		t.Fatal("the preview is missing, or shows the token")
	}
	test.Tap(connectButton(t, h, "Disable", 0)) // the direct GitHub entry
	h.idle()
	// Disabling reloaded the window, which drops the unapplied choice.
	test.Tap(connectCheck(t, h, "GitHub", 0))
	test.Tap(connectButton(t, h, "Preview", 0))
	h.idle()
	test.Tap(connectButton(t, h, "Apply", 0))
	h.idle()
	b, err := os.ReadFile(cursor)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"countersign-github"`) || strings.Contains(string(b), "api.githubcopilot.com") || !strings.Contains(string(b), token) {
		t.Errorf("file after disabling the direct entry and connecting GitHub:\n%s", b)
	}
	if !hasText(c.body, "The previous version is kept as "+cursor+".countersign-backup-") {
		t.Error("the backup is not shown")
	}
	if hasText(c.body, token) || strings.Contains(c.status.Text, token) {
		t.Error("the window shows the token")
	}
}

// Direct connections lead the window, with one action that sends every
// call through Countersign.
func TestConnectLeadsWithBypassesAndRoutesAll(t *testing.T) {
	h, f := openConnect(t, "direct")
	c := h.d.connect
	first, ok := c.body.Objects[0].(*widget.Label)
	if !ok || first.Text != "Direct connections that bypass review" {
		t.Fatalf("the window starts with %#v, want the direct connections", c.body.Objects[0])
	}
	if !shows(c.body, "2 connections in your AI apps reach services directly") {
		t.Error("the window does not count the connections that bypass review")
	}
	capturePNG(t, c.window(), "connect_bypass.png")
	test.Tap(connectButton(t, h, "Send everything through Countersign", 0))
	h.idle()
	if !strings.HasPrefix(c.status.Text, "Every call from Claude Desktop and Cursor now waits for your review.") {
		t.Errorf("status %q", c.status.Text)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, hs := range f.ov.Hosts {
		if len(hs.Direct) != 0 {
			t.Errorf("%s still has direct connections: %+v", hs.Name, hs.Direct)
		}
	}
	if !shows(c.body, "None: in the AI apps Countersign can read") {
		t.Error("with the bypasses turned off the window does not say none are left")
	}
	if buttons(c.body, "Send everything through Countersign") != nil {
		t.Error("the action is still offered with nothing left to send through Countersign")
	}
}

// TestConnectShowsAdministratorSnippets: "For administrators…" shows the
// lockdown text for this machine and copies it whole.
func TestConnectShowsAdministratorSnippets(t *testing.T) {
	h, f := openConnect(t, "found")
	c := h.d.connect
	admin := buttons(c.content, "For administrators…")
	if len(admin) != 1 {
		t.Fatalf("%d \"For administrators…\" buttons", len(admin))
	}
	test.Tap(admin[0])
	var box *widget.Entry
	h.waitFor("the administrator settings", func() bool {
		for _, o := range test.LaidOutObjects(c.window().Canvas().Overlays().Top()) {
			if e, ok := o.(*widget.Entry); ok {
				box = e
				return true
			}
		}
		return false
	})
	capturePNG(t, c.window(), "connect_admin_snippets.png")
	want, _ := f.AdminSnippets(context.Background())
	if box.Text != want {
		t.Fatalf("dialog shows %q, want %q", box.Text, want)
	}
	copyAll := buttons(c.window().Canvas().Overlays().Top(), "Copy all")
	if len(copyAll) != 1 {
		t.Fatal("no Copy all button")
	}
	test.Tap(copyAll[0])
	h.settle()
	if got := h.d.app.Clipboard().Content(); got != want {
		t.Fatalf("clipboard = %q", got)
	}
}
