package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/countersign/countersign/internal/audit"
	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/hosts"
)

// connectToken is the local token in these tests; it must never appear in
// what is shown or logged.
const connectToken = "tok3n-VERY-secret-0123456789abcdef"

// connectEnv is a home directory on Linux with AI apps' files in it and a
// Connect service pointed at it.
type connectEnv struct {
	c      *Connect
	home   string
	bridge string
	log    *bytes.Buffer
	audit  *audit.Log // the real SQLite audit log the service records in
}

func (e *connectEnv) claude() string {
	return filepath.Join(e.home, ".config", "Claude", "claude_desktop_config.json")
}
func (e *connectEnv) vscode() string {
	return filepath.Join(e.home, ".config", "Code", "User", "mcp.json")
}
func (e *connectEnv) cursor() string { return filepath.Join(e.home, ".cursor", "mcp.json") }

const connectSettings = `{"version": 2, "servers": [
	{"id": "github", "name": "GitHub", "kind": "github"},
	{"id": "jira", "name": "Jira", "kind": "atlassian"}
]}`

func newConnectEnv(t *testing.T, settings string) *connectEnv {
	t.Helper()
	dir := t.TempDir()
	e := &connectEnv{home: filepath.Join(dir, "home"), bridge: filepath.Join(dir, "bin", "countersign-bridge"), log: &bytes.Buffer{}}
	writeTestFile(t, e.bridge, "#!/bin/sh\n")
	user, err := config.Parse([]byte(settings))
	if err != nil {
		t.Fatal(err)
	}
	eff := config.Resolve(user, nil, appChecks())
	e.audit, err = audit.Open(filepath.Join(dir, "data", "audit.db"), audit.Options{Logger: discardLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.audit.Close() })
	e.c = NewConnect(ConnectDeps{
		Audit:      e.audit,
		Current:    func() *config.Effective { return eff },
		BridgePath: e.bridge,
		Port:       39217,
		Token:      connectToken,
		Env:        func() (hosts.Env, error) { return hosts.Env{GOOS: "linux", Home: e.home}, nil },
		Log:        slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	t.Cleanup(func() {
		if strings.Contains(e.log.String(), connectToken) {
			t.Errorf("the token was logged:\n%s", e.log)
		}
	})
	return e
}

func writeTestFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readTestFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (e *connectEnv) overview(t *testing.T) ConnectOverview {
	t.Helper()
	ov, err := e.c.Overview(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ov
}

func host(t *testing.T, ov ConnectOverview, id string) HostState {
	t.Helper()
	for _, h := range ov.Hosts {
		if h.ID == id {
			return h
		}
	}
	t.Fatalf("no host %s in %+v", id, ov.Hosts)
	return HostState{}
}

const claudeWithGitHub = `{
  "mcpServers": {
    "github": {
      "command": "docker",
      "args": ["run", "-i", "--rm", "-e", "GITHUB_PERSONAL_ACCESS_TOKEN", "ghcr.io/github/github-mcp-server"],
      "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": "ghp_notReal"}
    },
    "jira": {"command": "npx", "args": ["-y", "mcp-remote", "https://mcp.atlassian.com/v1/mcp"]},
    "files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]}
  }
}
`

func TestConnectOverviewReportsEachHost(t *testing.T) {
	e := newConnectEnv(t, connectSettings)
	writeTestFile(t, e.claude(), claudeWithGitHub)
	writeTestFile(t, e.vscode(), "{\n\t\"servers\": {\n\t\t\"a\": {\"url\": \"https://x\"}\n\t\t\"b\": {}\n\t}\n}\n")
	os.MkdirAll(filepath.Join(e.home, ".cursor"), 0o700)

	ov := e.overview(t)
	wantServers := []ConnectServer{{ID: "github", Name: "GitHub"}, {ID: "jira", Name: "Jira"}}
	if diff := cmp.Diff(wantServers, ov.Servers); diff != "" {
		t.Errorf("servers (-want +got):\n%s", diff)
	}
	var ids []string
	for _, h := range ov.Hosts {
		ids = append(ids, h.ID)
	}
	if diff := cmp.Diff([]string{"claude-desktop", "vscode", "vscode-insiders", "cursor"}, ids); diff != "" {
		t.Errorf("hosts (-want +got):\n%s", diff)
	}

	claude := host(t, ov, "claude-desktop")
	if !claude.Editable || claude.State != "Found" || claude.Path != e.claude() || claude.AddUnavailable != "" {
		t.Errorf("Claude Desktop: %+v", claude)
	}
	wantDirect := []DirectEntry{
		{Name: "github", Server: "github", ServerName: "GitHub", Reason: "runs ghcr.io/github/github-mcp-server"},
		{Name: "jira", Server: "atlassian", ServerName: "Atlassian (Jira and Confluence)", Reason: "connects to mcp.atlassian.com"},
	}
	if diff := cmp.Diff(wantDirect, claude.Direct); diff != "" {
		t.Errorf("direct entries found with the catalog's rules (-want +got):\n%s", diff)
	}
	if !strings.Contains(claude.Via, e.bridge) {
		t.Errorf("Via %q does not name the bridge", claude.Via)
	}

	vs := host(t, ov, "vscode")
	if vs.Editable || !strings.Contains(vs.Problem, "line 4") || vs.Why == "" {
		t.Errorf("malformed VS Code file: editable %v, problem %q, why %q", vs.Editable, vs.Problem, vs.Why)
	}
	if ins := host(t, ov, "vscode-insiders"); ins.Editable || ins.State != "Not installed" || ins.Why == "" {
		t.Errorf("VS Code Insiders: %+v", ins)
	}
	cur := host(t, ov, "cursor")
	if !cur.Editable || !strings.Contains(cur.State, "no tools connected yet") || !strings.Contains(cur.Via, "127.0.0.1:39217") {
		t.Errorf("Cursor without a file: %+v", cur)
	}
	if strings.Contains(cur.Via, connectToken) {
		t.Error("Via shows the token")
	}
}

func TestConnectPreviewThenApply(t *testing.T) {
	e := newConnectEnv(t, connectSettings)
	os.MkdirAll(filepath.Join(e.home, ".cursor"), 0o700)
	ctx := context.Background()

	p, err := e.c.Preview(ctx, "cursor", []string{"jira", "github"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"added countersign-github", "added countersign-jira"}, p.Changes); diff != "" {
		t.Errorf("changes, in settings order (-want +got):\n%s", diff)
	}
	if !strings.Contains(p.Diff, "+++ "+e.cursor()) || !strings.Contains(p.Diff, `"Authorization": "Bearer ********"`) || strings.Contains(p.Diff, connectToken) {
		t.Errorf("preview diff:\n%s", p.Diff)
	}
	if _, err := os.Stat(e.cursor()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("preview wrote the file: %v", err)
	}
	if p.Note != "This file will be readable only by you, because it holds Countersign's access key." {
		t.Errorf("preview note %q: the person is not told the file becomes private", p.Note)
	}

	r, err := e.c.Apply(ctx, "cursor", []string{"jira", "github"}, p.Diff)
	if err != nil {
		t.Fatal(err)
	}
	if r.Path != e.cursor() || r.Backup != "" || r.Diff != p.Diff {
		t.Errorf("result %+v", r)
	}
	got := readTestFile(t, e.cursor())
	if !strings.Contains(got, "http://127.0.0.1:39217/servers/github/mcp") || !strings.Contains(got, "Bearer "+connectToken) {
		t.Errorf("file written:\n%s", got)
	}
	if host(t, e.overview(t), "cursor").Connected == nil {
		t.Error("Overview does not show the new connections")
	}

	// The same again changes nothing and writes nothing.
	again, err := e.c.Apply(ctx, "cursor", []string{"github", "jira"}, p.Diff)
	if err != nil || again.Path != "" || again.Backup != "" {
		t.Errorf("second apply: %+v, %v", again, err)
	}
	if readTestFile(t, e.cursor()) != got {
		t.Error("second apply changed the file")
	}
	if p, _ := e.c.Preview(ctx, "cursor", []string{"github", "jira"}); p.Diff != "" || len(p.Changes) != 0 {
		t.Errorf("preview of the current state: %+v", p)
	}

	// Removing one keeps the other and backs the file up first.
	p, err = e.c.Preview(ctx, "cursor", []string{"github"})
	if err != nil {
		t.Fatal(err)
	}
	r, err = e.c.Apply(ctx, "cursor", []string{"github"}, p.Diff)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"removed countersign-jira"}, r.Changes); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	if r.Backup == "" || readTestFile(t, r.Backup) != got {
		t.Errorf("backup %q does not hold the previous file", r.Backup)
	}
	if diff := cmp.Diff([]string{"github"}, host(t, e.overview(t), "cursor").Connected); diff != "" {
		t.Errorf("connected (-want +got):\n%s", diff)
	}
}

func TestConnectClaudeDesktopGetsBridgeEntries(t *testing.T) {
	e := newConnectEnv(t, connectSettings)
	writeTestFile(t, e.claude(), claudeWithGitHub)
	ctx := context.Background()
	p, err := e.c.Preview(ctx, "claude-desktop", []string{"github"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Note != "" {
		t.Errorf("preview note %q for a file without the token", p.Note)
	}
	if _, err := e.c.Apply(ctx, "claude-desktop", []string{"github"}, p.Diff); err != nil {
		t.Fatal(err)
	}
	got := readTestFile(t, e.claude())
	want := `
    "countersign-github": {
      "command": "` + e.bridge + `",
      "args": ["github"]
    }
  }
}
`
	if !strings.Contains(got, want) {
		t.Errorf("Claude Desktop file:\n%s\nwant it to contain\n%s", got, want)
	}
	if strings.Contains(got, connectToken) {
		t.Error("the token was written into a stdio host's file")
	}
	if !strings.Contains(got, `"files": {"command": "npx"`) {
		t.Error("an unrelated entry was changed")
	}
}

func TestConnectRefuses(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		setup   func(t *testing.T, e *connectEnv)
		do      func(e *connectEnv) error
		wantErr string
		is      error
	}{
		{name: "a malformed file, naming the line",
			setup: func(t *testing.T, e *connectEnv) { writeTestFile(t, e.vscode(), "{\n  \"servers\": {,}\n}\n") },
			do: func(e *connectEnv) error {
				_, err := e.c.Preview(ctx, "vscode", []string{"github"})
				return err
			},
			wantErr: "line 2"},
		{name: "an app that is not installed",
			do: func(e *connectEnv) error {
				_, err := e.c.Preview(ctx, "cursor", []string{"github"})
				return err
			},
			wantErr: "Cursor is not installed"},
		{name: "a server not in the settings",
			setup: func(t *testing.T, e *connectEnv) { os.MkdirAll(filepath.Dir(e.cursor()), 0o700) },
			do: func(e *connectEnv) error {
				_, err := e.c.Preview(ctx, "cursor", []string{"gitlab"})
				return err
			},
			wantErr: `no server "gitlab"`},
		{name: "an unknown app",
			do: func(e *connectEnv) error {
				_, err := e.c.Preview(ctx, "zed", nil)
				return err
			},
			wantErr: `unknown AI app "zed"`},
		{name: "the person's own entry under Countersign's name",
			setup: func(t *testing.T, e *connectEnv) {
				writeTestFile(t, e.cursor(), `{"mcpServers": {"countersign-github": {"url": "https://api.githubcopilot.com/mcp/"}}}`)
			},
			do: func(e *connectEnv) error {
				_, err := e.c.Preview(ctx, "cursor", []string{"github"})
				return err
			},
			is: hosts.ErrConflict},
		{name: "disabling an entry that is not a direct vendor connection",
			setup: func(t *testing.T, e *connectEnv) { writeTestFile(t, e.claude(), claudeWithGitHub) },
			do: func(e *connectEnv) error {
				_, err := e.c.Disable(ctx, "claude-desktop", []string{"files"})
				return err
			},
			wantErr: `"files" is not a direct connection`},
		{name: "a missing bridge",
			setup: func(t *testing.T, e *connectEnv) {
				writeTestFile(t, e.claude(), "{}")
				os.Remove(e.bridge)
			},
			do: func(e *connectEnv) error {
				_, err := e.c.Preview(ctx, "claude-desktop", []string{"github"})
				return err
			},
			wantErr: "countersign-bridge was not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newConnectEnv(t, connectSettings)
			if tt.setup != nil {
				tt.setup(t, e)
			}
			before := snapshot(t, e.home)
			err := tt.do(e)
			if err == nil || (tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr)) || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Fatalf("error %v, want one containing %q / matching %v", err, tt.wantErr, tt.is)
			}
			if diff := cmp.Diff(before, snapshot(t, e.home)); diff != "" {
				t.Errorf("files changed (-before +after):\n%s", diff)
			}
		})
	}
}

// snapshot reads every file under dir.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out[p] = readTestFile(t, p)
		}
		return nil
	})
	return out
}

func TestConnectApplyRefusesAStalePreview(t *testing.T) {
	e := newConnectEnv(t, connectSettings)
	writeTestFile(t, e.cursor(), "{\"mcpServers\": {}}\n")
	ctx := context.Background()
	p, err := e.c.Preview(ctx, "cursor", []string{"github"})
	if err != nil {
		t.Fatal(err)
	}
	changed := "{\"mcpServers\": {\"mine\": {\"url\": \"https://example.com/mcp\"}}}\n"
	writeTestFile(t, e.cursor(), changed)
	if _, err := e.c.Apply(ctx, "cursor", []string{"github"}, p.Diff); !errors.Is(err, ErrPreviewStale) {
		t.Fatalf("Apply after the file changed: %v, want ErrPreviewStale", err)
	}
	if readTestFile(t, e.cursor()) != changed {
		t.Error("a stale apply wrote the file")
	}
}

func TestConnectBridgeMissingStillRemoves(t *testing.T) {
	e := newConnectEnv(t, connectSettings)
	ctx := context.Background()
	writeTestFile(t, e.claude(), "{}\n")
	p, _ := e.c.Preview(ctx, "claude-desktop", []string{"github", "jira"})
	if _, err := e.c.Apply(ctx, "claude-desktop", []string{"github", "jira"}, p.Diff); err != nil {
		t.Fatal(err)
	}
	os.Remove(e.bridge)
	if why := host(t, e.overview(t), "claude-desktop").AddUnavailable; !strings.Contains(why, "countersign-bridge was not found") {
		t.Errorf("AddUnavailable %q", why)
	}
	p, err := e.c.Preview(ctx, "claude-desktop", []string{"jira"})
	if err != nil {
		t.Fatalf("removing with the bridge missing: %v", err)
	}
	if diff := cmp.Diff([]string{"removed countersign-github"}, p.Changes); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
}

func TestConnectServersNoLongerInSettingsCanOnlyBeRemoved(t *testing.T) {
	e := newConnectEnv(t, `{"version": 2, "servers": [{"id": "github", "kind": "github"}]}`)
	writeTestFile(t, e.cursor(), `{"mcpServers": {"countersign-old": {"url": "http://127.0.0.1:39217/servers/old/mcp"}}}`)
	ov := e.overview(t)
	want := []ConnectServer{{ID: "github", Name: "GitHub"}, {ID: "old", Name: "old", Removed: true}}
	if diff := cmp.Diff(want, ov.Servers, cmpopts.IgnoreFields(ConnectServer{}, "Note")); diff != "" {
		t.Errorf("servers (-want +got):\n%s", diff)
	}
	ctx := context.Background()
	// Keeping it is no change; dropping it removes it.
	if p, err := e.c.Preview(ctx, "cursor", []string{"old"}); err != nil || p.Diff != "" {
		t.Errorf("keeping a removed server: %+v, %v", p, err)
	}
	p, err := e.c.Preview(ctx, "cursor", nil)
	if err != nil || len(p.Changes) != 1 || p.Changes[0] != "removed countersign-old" {
		t.Errorf("removing it: %+v, %v", p, err)
	}
	// It cannot be added where it is not.
	os.MkdirAll(filepath.Join(e.home, ".config", "Claude"), 0o700)
	if _, err := e.c.Preview(ctx, "claude-desktop", []string{"old"}); err == nil {
		t.Error("a server not in the settings was added")
	}
}

func TestConnectDisableThenEnable(t *testing.T) {
	e := newConnectEnv(t, connectSettings)
	writeTestFile(t, e.claude(), claudeWithGitHub)
	ctx := context.Background()

	r, err := e.c.Disable(ctx, "claude-desktop", []string{"github", "jira"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Path != e.claude() || r.Backup == "" || r.Sidecar == "" || len(r.Changes) != 2 {
		t.Errorf("result %+v", r)
	}
	if readTestFile(t, r.Backup) != claudeWithGitHub {
		t.Error("the backup is not the file as it was")
	}
	got := readTestFile(t, e.claude())
	if strings.Contains(got, "github-mcp-server") || strings.Contains(got, "mcp.atlassian.com") || !strings.Contains(got, "server-filesystem") {
		t.Errorf("file after disabling:\n%s", got)
	}
	if strings.Contains(r.Diff, "ghp_notReal") {
		t.Error("the diff shows the entry's secret")
	}
	cl := host(t, e.overview(t), "claude-desktop")
	if len(cl.Direct) != 0 || len(cl.Disabled) != 2 || cl.Disabled[0].Name != "github" || cl.Disabled[0].DisabledAt.IsZero() {
		t.Errorf("after disabling: direct %+v, disabled %+v", cl.Direct, cl.Disabled)
	}

	if _, err := e.c.Enable(ctx, "claude-desktop", []string{"github", "jira"}); err != nil {
		t.Fatal(err)
	}
	if got := readTestFile(t, e.claude()); got != claudeWithGitHub {
		t.Errorf("enabling did not restore the file:\n%s", cmp.Diff(claudeWithGitHub, got))
	}
	if cl := host(t, e.overview(t), "claude-desktop"); len(cl.Disabled) != 0 || len(cl.Direct) != 2 {
		t.Errorf("after enabling: direct %+v, disabled %+v", cl.Direct, cl.Disabled)
	}
}

func TestConnectHonoursCancellation(t *testing.T) {
	e := newConnectEnv(t, connectSettings)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.c.Overview(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Overview: %v", err)
	}
	if _, err := e.c.Apply(ctx, "cursor", nil, ""); !errors.Is(err, context.Canceled) {
		t.Errorf("Apply: %v", err)
	}
}

func TestDirectMatchersCoverTheCatalog(t *testing.T) {
	ms := DirectMatchers()
	if len(ms) != 6 {
		t.Fatalf("%d matchers, want one per catalog entry", len(ms))
	}
	for _, m := range ms {
		if m.Server == "" || len(m.Hosts)+len(m.Packages) == 0 {
			t.Errorf("matcher %+v matches nothing", m)
		}
	}
}

func TestDefaultBridgePathIsNextToTheExecutable(t *testing.T) {
	p, err := DefaultBridgePath()
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	exe, _ = filepath.EvalSymlinks(exe)
	if filepath.Dir(p) != filepath.Dir(exe) || !strings.HasPrefix(filepath.Base(p), "countersign-bridge") {
		t.Errorf("DefaultBridgePath() = %q, executable %q", p, exe)
	}
}

// connectEvents are the audit log's records of changes to AI apps' files,
// oldest first, each with its detail decoded.
func (e *connectEnv) connectEvents(t *testing.T) ([]audit.Record, []map[string]any) {
	t.Helper()
	page, err := e.audit.Query(context.Background(), audit.Filter{Kinds: []audit.Kind{audit.KindSettingsChanged}}, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var recs []audit.Record
	var details []map[string]any
	for i := len(page.Records) - 1; i >= 0; i-- {
		r := page.Records[i]
		if strings.Contains(string(r.Detail), connectToken) || strings.Contains(string(r.Detail), "ghp_notReal") ||
			strings.Contains(r.Reason, connectToken) {
			t.Fatalf("the audit log holds a secret: %s %s", r.Reason, r.Detail)
		}
		var d map[string]any
		if err := json.Unmarshal(r.Detail, &d); err != nil {
			t.Fatalf("detail %s: %v", r.Detail, err)
		}
		if d["setting"] != "connect" {
			continue
		}
		recs, details = append(recs, r), append(details, d)
	}
	return recs, details
}

// Every change Connect makes to an AI app's file reaches the audit log:
// connecting, turning off a direct connection, turning it back on, and
// sending everything through Countersign; the token never does.
func TestConnectChangesAreAudited(t *testing.T) {
	e := newConnectEnv(t, connectSettings)
	writeTestFile(t, e.claude(), claudeWithGitHub)
	writeTestFile(t, e.vscode(), "{\n\t\"servers\": {\n\t\t\"gh\": {\"type\": \"http\", \"url\": \"https://api.githubcopilot.com/mcp/\"}\n\t}\n}\n")
	ctx := context.Background()

	p, err := e.c.Preview(ctx, "vscode", []string{"jira"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Apply(ctx, "vscode", []string{"jira"}, p.Diff); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Disable(ctx, "claude-desktop", []string{"github"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.Enable(ctx, "claude-desktop", []string{"github"}); err != nil {
		t.Fatal(err)
	}
	rs, err := e.c.RouteAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 {
		t.Fatalf("RouteAll changed %d apps, want Claude Desktop and VS Code", len(rs))
	}
	for _, h := range e.overview(t).Hosts {
		if len(h.Direct) != 0 {
			t.Errorf("%s still has direct connections after RouteAll: %+v", h.Name, h.Direct)
		}
	}
	if vs := host(t, e.overview(t), "vscode"); !slices.Contains(vs.Connected, "github") || !slices.Contains(vs.Connected, "jira") {
		t.Errorf("VS Code after RouteAll connects %v, want GitHub (in place of its direct entry) and Jira", vs.Connected)
	}
	if got := readTestFile(t, e.vscode()); strings.Contains(got, "\"gh\"") {
		t.Errorf("VS Code's direct entry is still in its file:\n%s", got)
	}

	recs, details := e.connectEvents(t)
	want := []struct{ reason, app, file string }{
		{"connected in VS Code", "VS Code", e.vscode()},
		{"turned off direct connections in Claude Desktop", "Claude Desktop", e.claude()},
		{"turned direct connections back on in Claude Desktop", "Claude Desktop", e.claude()},
		{"sent every call through Countersign in Claude Desktop", "Claude Desktop", e.claude()},
		{"sent every call through Countersign in VS Code", "VS Code", e.vscode()},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d connect events, want %d: %+v", len(recs), len(want), recs)
	}
	for i, w := range want {
		r, d := recs[i], details[i]
		if r.Reason != w.reason || d["app"] != w.app || d["file"] != w.file || r.Actor != audit.ActorPerson {
			t.Errorf("event %d: %q by %q, detail %v; want %q on %s", i, r.Reason, r.Actor, d, w.reason, w.file)
		}
		if d["changes"] == nil || d["diff"] == nil {
			t.Errorf("event %d lacks what changed: %v", i, d)
		}
	}
	if !strings.Contains(details[0]["diff"].(string), "Bearer ********") {
		t.Errorf("the connect diff does not show where the masked token is: %s", details[0]["diff"])
	}
}

// Where Countersign's servers cannot be added, RouteAll still turns the
// bypasses off, carries on with the other apps and says what is missing.
func TestConnectRouteAllWithoutTheBridge(t *testing.T) {
	e := newConnectEnv(t, connectSettings)
	writeTestFile(t, e.claude(), claudeWithGitHub)
	writeTestFile(t, e.vscode(), "{\n\t\"servers\": {\n\t\t\"gh\": {\"type\": \"http\", \"url\": \"https://api.githubcopilot.com/mcp/\"}\n\t}\n}\n")
	if err := os.Remove(e.bridge); err != nil {
		t.Fatal(err)
	}
	rs, err := e.c.RouteAll(context.Background())
	if err == nil || !strings.Contains(err.Error(), "in Claude Desktop the direct connections were turned off") {
		t.Fatalf("RouteAll error %v, want it to say Claude Desktop's servers could not be added", err)
	}
	if len(rs) != 2 {
		t.Fatalf("RouteAll changed %d apps, want both", len(rs))
	}
	for _, h := range e.overview(t).Hosts {
		if len(h.Direct) != 0 {
			t.Errorf("%s still has direct connections: %+v", h.Name, h.Direct)
		}
	}
	if vs := host(t, e.overview(t), "vscode"); !slices.Contains(vs.Connected, "github") {
		t.Errorf("VS Code connects %v, want GitHub through Countersign", vs.Connected)
	}
	recs, _ := e.connectEvents(t)
	if len(recs) != 2 || recs[0].Reason != "turned off direct connections in Claude Desktop" {
		t.Errorf("audit: %+v", recs)
	}
}

// TestConnectFindsDirectConnectionsToTheNewEndpoints: an AI app's own
// entry for Atlassian's OAuth address, and one for the organisation's own
// SonarQube Server (whose host only the settings name), bypass review and
// are found.
func TestConnectFindsDirectConnectionsToTheNewEndpoints(t *testing.T) {
	e := newConnectEnv(t, `{"version": 2, "servers": [
	{"id": "sonar", "name": "Sonar", "kind": "sonarqube-cloud", "params": {"server": "sonar.defra.gov.uk"}}
]}`)
	writeTestFile(t, e.claude(), `{"mcpServers": {
    "rovo": {"command": "npx", "args": ["-y", "mcp-remote", "https://mcp.atlassian.com/v1/mcp/authv2"]},
    "sonar": {"command": "npx", "args": ["-y", "mcp-remote", "https://SONAR.defra.gov.uk/mcp"]},
    "other": {"command": "npx", "args": ["-y", "mcp-remote", "https://sonar.example.org/mcp"]}
  }}`)
	want := []DirectEntry{
		{Name: "rovo", Server: "atlassian", ServerName: "Atlassian (Jira and Confluence)", Reason: "connects to mcp.atlassian.com"},
		{Name: "sonar", Server: "sonarqube-cloud", ServerName: "SonarQube", Reason: "connects to sonar.defra.gov.uk"},
	}
	if diff := cmp.Diff(want, host(t, e.overview(t), "claude-desktop").Direct); diff != "" {
		t.Errorf("direct entries (-want +got):\n%s", diff)
	}
}

// TestConnectAdminSnippetsNameTheServersNotTheToken: the administrator's
// lockdown text names this machine's servers, port and bridge, and never
// the local token.
func TestConnectAdminSnippetsNameTheServersNotTheToken(t *testing.T) {
	e := newConnectEnv(t, connectSettings)
	text, err := e.c.AdminSnippets(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range e.c.d.Current().Servers {
		if !strings.Contains(text, "/servers/"+s.Server.ID+"/mcp") {
			t.Errorf("no allowlist entry for %s:\n%s", s.Server.ID, text)
		}
	}
	if !strings.Contains(text, e.bridge) || !strings.Contains(text, "127.0.0.1:39217") {
		t.Errorf("the text does not name the bridge %s and port:\n%s", e.bridge, text)
	}
	if strings.Contains(text, connectToken) {
		t.Fatal("the local token is in the administrator's text")
	}
}
