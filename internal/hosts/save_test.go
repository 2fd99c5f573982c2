package hosts

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const unrelatedCursor = `{
  "mcpServers": {
    "context7": {
      "url": "https://mcp.context7.com/mcp"
    }
  }
}
`

func loadConnect(t *testing.T, e *Editor, h Host, path string, ids ...string) *Config {
	t.Helper()
	cfg, err := e.Load(h, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Connect(testTarget, ids...); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// A file that holds Countersign's token becomes readable only by its owner,
// whatever mode the AI app gave it (VS Code and Cursor create mcp.json 0644);
// a file with no token keeps its mode.
func TestSaveMakesAFileWithTheTokenPrivateAndKeepsOtherModes(t *testing.T) {
	for _, mode := range []os.FileMode{0o600, 0o640, 0o644, 0o664} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()

			// Cursor reaches Countersign over HTTP: its entry carries the token.
			withToken := filepath.Join(dir, "cursor", "mcp.json")
			writeFile(t, withToken, unrelatedCursor)
			if err := os.Chmod(withToken, mode); err != nil {
				t.Fatal(err)
			}
			cfg := loadConnect(t, testEditor(t), Cursor, withToken, "github")
			if !cfg.HoldsToken() {
				t.Fatal("HoldsToken = false for an HTTP entry")
			}
			if _, err := cfg.Save(); err != nil {
				t.Fatal(err)
			}
			if data, _ := os.ReadFile(withToken); !strings.Contains(string(data), "Bearer "+testToken) {
				t.Fatalf("the test is wrong: no token in\n%s", data)
			}
			assertMode(t, withToken, 0o600)
			for _, b := range backups(t, filepath.Dir(withToken)) {
				assertMode(t, b, 0o600)
			}

			// Claude Desktop starts the bridge, which reads the token from
			// the keychain: its file holds no token and keeps its mode.
			noToken := filepath.Join(dir, "claude", "claude_desktop_config.json")
			writeFile(t, noToken, unrelatedCursor)
			if err := os.Chmod(noToken, mode); err != nil {
				t.Fatal(err)
			}
			cfg = loadConnect(t, testEditor(t), ClaudeDesktop, noToken, "github")
			if cfg.HoldsToken() {
				t.Fatal("HoldsToken = true for a bridge entry")
			}
			if _, err := cfg.Save(); err != nil {
				t.Fatal(err)
			}
			assertMode(t, noToken, mode)
		})
	}
}

// Taking Countersign's entry out of a file leaves no token: the file keeps
// the mode it has.
func TestSaveWithoutTheTokenKeepsTheMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mcp.json")
	writeFile(t, path, unrelatedCursor)
	e := testEditor(t)
	if _, err := loadConnect(t, e, Cursor, path, "github").Save(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil { // the AI app rewrote it
		t.Fatal(err)
	}
	cfg, err := e.Load(Cursor, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Disconnect(); err != nil {
		t.Fatal(err)
	}
	if cfg.HoldsToken() {
		t.Fatal("HoldsToken = true after removing the only entry")
	}
	if _, err := cfg.Save(); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); strings.Contains(string(data), testToken) {
		t.Fatalf("the token is still in\n%s", data)
	}
	assertMode(t, path, 0o644)
}

func TestSaveCreatesMissingFileAndDirectoryPrivately(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Code", "User")
	path := filepath.Join(dir, "mcp.json")
	saved, err := loadConnect(t, testEditor(t), VSCode, path, "github").Save()
	if err != nil {
		t.Fatal(err)
	}
	if saved.Path != path || saved.Backup != "" {
		t.Errorf("Saved = %+v", saved)
	}
	assertMode(t, path, 0o600)
	assertMode(t, dir, 0o700)
}

func TestSaveBacksUpOncePerChange(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mcp.json")
	writeFile(t, path, unrelatedCursor)
	e := testEditor(t)

	first, err := loadConnect(t, e, Cursor, path, "github").Save()
	if err != nil {
		t.Fatal(err)
	}
	// Repeating the same edit writes nothing at all.
	for range 3 {
		if s, err := loadConnect(t, e, Cursor, path, "github").Save(); err != nil || s.Path != "" {
			t.Fatalf("repeat Save = %+v, %v", s, err)
		}
	}
	if got := backups(t, dir); len(got) != 1 || got[0] != first.Backup {
		t.Fatalf("backups %v, want only %s", got, first.Backup)
	}
	// A real change within the same second gets its own backup.
	second, err := loadConnect(t, e, Cursor, path, "atlassian").Save()
	if err != nil {
		t.Fatal(err)
	}
	if second.Backup != first.Backup+"-2" {
		t.Errorf("second backup %s, want %s-2", second.Backup, first.Backup)
	}
	if got := string(readFile(t, first.Backup)); got != unrelatedCursor {
		t.Errorf("first backup holds %q", got)
	}
	if len(backups(t, dir)) != 2 {
		t.Errorf("backups: %v", backups(t, dir))
	}
	assertNoTemp(t, dir)
}

func TestSaveFollowsSymlinks(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "dotfiles", "cursor-mcp.json")
	writeFile(t, target, unrelatedCursor)
	link := filepath.Join(dir, ".cursor", "mcp.json")
	mkdir(t, filepath.Dir(link))
	if err := os.Symlink(target, link); err != nil {
		t.Skip("symlinks unavailable:", err)
	}
	saved, err := loadConnect(t, testEditor(t), Cursor, link, "github").Save()
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(link)
	if err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the link was replaced by a file: %v %v", fi.Mode(), err)
	}
	if saved.Path != target || !strings.HasPrefix(saved.Backup, target) {
		t.Errorf("Saved = %+v, want writes next to %s", saved, target)
	}
	if !strings.Contains(string(readFile(t, target)), "countersign-github") {
		t.Error("the link's target was not updated")
	}
}

func TestSaveRefusesAFileChangedSinceLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mcp.json")
	writeFile(t, path, unrelatedCursor)
	cfg := loadConnect(t, testEditor(t), Cursor, path, "github")
	theirs := strings.Replace(unrelatedCursor, "context7", "context8", 1)
	writeFile(t, path, theirs)
	if _, err := cfg.Save(); !errors.Is(err, ErrChanged) {
		t.Fatalf("Save = %v, want ErrChanged", err)
	}
	if got := string(readFile(t, path)); got != theirs {
		t.Errorf("the other writer's change was overwritten: %q", got)
	}
	if len(backups(t, dir)) != 0 {
		t.Error("a refused save left a backup")
	}

	// A file created after loading a missing one is also someone else's.
	missing := filepath.Join(dir, "new.json")
	cfg = loadConnect(t, testEditor(t), Cursor, missing, "github")
	writeFile(t, missing, "{}")
	if _, err := cfg.Save(); !errors.Is(err, ErrChanged) {
		t.Errorf("Save over a newly created file = %v, want ErrChanged", err)
	}
}

func TestSaveRefusesAReadOnlyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mcp.json")
	writeFile(t, path, unrelatedCursor)
	if err := os.Chmod(path, 0o444); err != nil {
		t.Fatal(err)
	}
	if _, err := loadConnect(t, testEditor(t), Cursor, path, "github").Save(); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Save = %v, want ErrReadOnly", err)
	}
	if got := string(readFile(t, path)); got != unrelatedCursor {
		t.Errorf("read-only file changed: %q", got)
	}
}

func TestMalformedFileIsNeverWritten(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "claude_desktop_config.json")
	bad := "{\n  \"mcpServers\": {\n    \"a\": {\"command\": \"a\"},\n  }\n}\n"
	writeFile(t, path, bad)
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	_, err := testEditor(t).Load(ClaudeDesktop, path)
	var se *SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("Load = %v, want a *SyntaxError", err)
	}
	if se.Path != path || se.Line != 4 || se.Column != 3 {
		t.Errorf("error at %s:%d:%d, want %s:4:3 (the trailing comma's closing brace)", se.Path, se.Line, se.Column, path)
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "line 4") {
		t.Errorf("error %q does not name the file and line", err)
	}
	fi, _ := os.Stat(path)
	if !fi.ModTime().Equal(old) || string(readFile(t, path)) != bad {
		t.Error("the malformed file was touched")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("files appeared: %v", ents)
	}
}

func TestWriteAtomicCleansUpOnFailure(t *testing.T) {
	dir := t.TempDir()
	// Renaming a file over a non-empty directory fails after the temporary
	// file was written.
	target := filepath.Join(dir, "mcp.json")
	writeFile(t, filepath.Join(target, "inside"), "x")
	if err := writeAtomic(target, []byte("{}"), 0o600); err == nil {
		t.Fatal("writeAtomic over a directory succeeded")
	}
	assertNoTemp(t, dir)
}

func TestTokenFileIsPrivateAndTokenStaysUnshown(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mcp.json")
	cfg := loadConnect(t, testEditor(t), VSCode, path, "github")
	saved, err := cfg.Save()
	if err != nil {
		t.Fatal(err)
	}
	assertMode(t, path, 0o600)
	if strings.Contains(saved.Diff, testToken) || strings.Contains(strings.Join(saved.Changes, "\n"), testToken) {
		t.Error("the token is shown")
	}
	if !strings.Contains(saved.Diff, "Bearer ********") {
		t.Errorf("the diff does not show where the token goes:\n%s", saved.Diff)
	}
}

func TestConnectValidatesItsInput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.json")
	tests := []struct {
		name string
		host Host
		t    Target
		ids  []string
	}{
		{"relative bridge path", ClaudeDesktop, Target{BridgePath: "countersign-bridge"}, []string{"github"}},
		{"bridge path of another program", ClaudeDesktop, Target{BridgePath: "/usr/bin/python3"}, []string{"github"}},
		{"relative settings path", ClaudeDesktop, Target{BridgePath: testBridge, ConfigPath: "settings.json"}, []string{"github"}},
		{"no port", VSCode, Target{Token: testToken}, []string{"github"}},
		{"port out of range", Cursor, Target{Port: 70000, Token: testToken}, []string{"github"}},
		{"no token", VSCode, Target{Port: testPort}, []string{"github"}},
		{"token with a quote", VSCode, Target{Port: testPort, Token: `a"b`}, []string{"github"}},
		{"id with upper case", VSCode, testTarget, []string{"GitHub"}},
		{"id with a slash", Cursor, testTarget, []string{"a/b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := testEditor(t).Load(tt.host, path)
			if err != nil {
				t.Fatal(err)
			}
			if err := cfg.Connect(tt.t, tt.ids...); err == nil {
				t.Error("Connect accepted it")
			}
			if cfg.Changed() {
				t.Error("a refused Connect changed the file")
			}
		})
	}
	// Windows paths are accepted wherever the tests run.
	cfg, _ := testEditor(t).Load(ClaudeDesktop, path)
	if err := cfg.Connect(Target{BridgePath: `C:\Program Files\Countersign\countersign-bridge.exe`}, "github"); err != nil {
		t.Errorf("Windows bridge path refused: %v", err)
	}
	if !strings.Contains(cfg.Diff(), `"C:\\Program Files\\Countersign\\countersign-bridge.exe"`) {
		t.Errorf("Windows path not escaped in JSON:\n%s", cfg.Diff())
	}
}

func TestDisconnectKeepsLookalikes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mcp.json")
	// Named like ours but pointing elsewhere, or ours for another id.
	writeFile(t, path, `{"mcpServers": {
  "countersign-github": {"url": "https://api.githubcopilot.com/mcp/"},
  "countersign-jira": {"url": "http://127.0.0.1:39217/servers/atlassian/mcp"},
  "countersign-azure": {"command": "/x/countersign-bridge", "args": ["other"]},
  "countersign-sonar": {"url": "http://127.0.0.1:39217/servers/sonar/mcp"}
}}`)
	cfg, err := testEditor(t).Load(Cursor, path)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Connected(); len(got) != 1 || got[0] != "sonar" {
		t.Errorf("Connected() = %v, want [sonar]", got)
	}
	if err := cfg.Disconnect(); err != nil {
		t.Fatal(err)
	}
	if got := cfg.Changes(); len(got) != 1 || got[0] != "removed countersign-sonar" {
		t.Errorf("Changes() = %v", got)
	}
	for _, keep := range []string{"countersign-github", "countersign-jira", "countersign-azure"} {
		if !strings.Contains(string(cfg.bytes()), keep) {
			t.Errorf("%s was removed", keep)
		}
	}
	// Disconnecting one id leaves the others.
	cfg2 := loadConnect(t, testEditor(t), Cursor, filepath.Join(t.TempDir(), "m.json"), "a", "b", "c")
	if err := cfg2.Disconnect("b"); err != nil {
		t.Fatal(err)
	}
	if got := cfg2.Connected(); len(got) != 2 || got[0] != "a" || got[1] != "c" {
		t.Errorf("Connected() after removing b = %v", got)
	}
}

func BenchmarkConnectAndDiff(b *testing.B) {
	e := NewEditor(nil)
	data := []byte(directVSCode)
	b.ReportAllocs()
	for b.Loop() {
		cfg, err := e.parseConfig(VSCode, "mcp.json", data)
		if err != nil {
			b.Fatal(err)
		}
		if err := cfg.Connect(testTarget, "github", "atlassian", "azure-devops"); err != nil {
			b.Fatal(err)
		}
		if cfg.Diff() == "" {
			b.Fatal("no diff")
		}
	}
}

func TestSyntaxErrorsDoNotQuoteValues(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mcp.json")
	secret := "ghp_s3cretValue"
	writeFile(t, path, "{\n  \"mcpServers\": {\n    \"gh\": {\"env\": {\"GITHUB_TOKEN\": \""+secret+"\t\"}}\n  }\n}\n")
	for _, h := range []Host{Cursor, ClaudeDesktop} {
		_, err := testEditor(t).Load(h, path)
		var se *SyntaxError
		if !errors.As(err, &se) || se.Line != 3 {
			t.Fatalf("%s: Load = %v, want a syntax error on line 3", h, err)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the error quotes the value: %v", h, err)
		}
	}
}

// A bridge for a Countersign with its own settings file is told where it is,
// and the entry is still recognised as Countersign's.
func TestConnectBridgeWithSettingsPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "claude_desktop_config.json")
	cfg, err := testEditor(t).Load(ClaudeDesktop, path)
	if err != nil {
		t.Fatal(err)
	}
	target := testTarget
	target.ConfigPath = "/home/me/test settings.json"
	if err := cfg.Connect(target, "github"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cfg.Diff(), `"args": ["-config", "/home/me/test settings.json", "github"]`) {
		t.Errorf("the entry does not pass -config:\n%s", cfg.Diff())
	}
	if got := cfg.Connected(); len(got) != 1 || got[0] != "github" {
		t.Errorf("Connected() = %v, want [github]", got)
	}
	before := cfg.Diff()
	if err := cfg.Connect(target, "github"); err != nil || cfg.Diff() != before {
		t.Errorf("connecting again changed the entry (err %v):\n%s", err, cfg.Diff())
	}
}
