package hosts

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// withTokenFile writes a Cursor file holding Countersign's entry, with its
// token, and gives it mode.
func withTokenFile(t *testing.T, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mcp.json")
	writeFile(t, path, unrelatedCursor)
	if _, err := loadConnect(t, testEditor(t), Cursor, path, "github").Save(); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); !strings.Contains(string(data), "Bearer "+testToken) {
		t.Fatalf("the test is wrong: no token in\n%s", data)
	}
	if err := os.Chmod(path, mode); err != nil { // as an older Countersign or the AI app left it
		t.Fatal(err)
	}
	return path
}

// A file that already holds the token readable by others (written by an
// older Countersign, or by the person) becomes readable only by its owner
// when loaded; files without the token, and files already private, are left
// as they are. The log names the file, never the token.
func TestMakePrivateTightensAFileHoldingTheToken(t *testing.T) {
	var logged bytes.Buffer
	e := testEditor(t)
	e.log = slog.New(slog.NewTextHandler(&logged, nil))
	load := func(path string) *Config {
		t.Helper()
		cfg, err := e.Load(Cursor, path)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	for _, tc := range []struct {
		from, to os.FileMode
	}{{0o644, 0o600}, {0o664, 0o600}, {0o640, 0o600}, {0o604, 0o600}, {0o444, 0o400}, {0o600, 0o600}, {0o400, 0o400}} {
		path := withTokenFile(t, tc.from)
		changed, err := load(path).MakePrivate()
		if err != nil {
			t.Fatalf("%v: %v", tc.from, err)
		}
		if changed != (tc.from != tc.to) {
			t.Errorf("%v: changed = %v", tc.from, changed)
		}
		assertMode(t, path, tc.to)
	}

	// No token: untouched.
	plain := filepath.Join(t.TempDir(), "mcp.json")
	writeFile(t, plain, unrelatedCursor)
	os.Chmod(plain, 0o644)
	if changed, err := load(plain).MakePrivate(testToken); changed || err != nil {
		t.Fatalf("a file without the token: changed %v, %v", changed, err)
	}
	assertMode(t, plain, 0o644)

	// The token pasted into an entry of the person's own is found too.
	pasted := filepath.Join(t.TempDir(), "mcp.json")
	writeFile(t, pasted, `{"mcpServers": {"mine": {"url": "http://127.0.0.1:1/x", "headers": {"Authorization": "Bearer `+testToken+`"}}}}`)
	os.Chmod(pasted, 0o644)
	if changed, err := load(pasted).MakePrivate(); changed || err != nil {
		t.Fatalf("without the token to look for: changed %v, %v", changed, err)
	}
	assertMode(t, pasted, 0o644)
	if changed, err := load(pasted).MakePrivate(testToken); !changed || err != nil {
		t.Fatalf("the person's own entry with the token: changed %v, %v", changed, err)
	}
	assertMode(t, pasted, 0o600)

	// Changed since it was loaded: left alone.
	changedPath := withTokenFile(t, 0o644)
	cfg := load(changedPath)
	os.WriteFile(changedPath, []byte(unrelatedCursor), 0o644)
	if _, err := cfg.MakePrivate(); !errors.Is(err, ErrChanged) {
		t.Fatalf("a file changed since Load: %v, want ErrChanged", err)
	}
	assertMode(t, changedPath, 0o644)

	// Missing: nothing to do.
	if changed, err := load(filepath.Join(t.TempDir(), "mcp.json")).MakePrivate(testToken); changed || err != nil {
		t.Fatalf("a missing file: changed %v, %v", changed, err)
	}

	if strings.Contains(logged.String(), testToken) {
		t.Fatalf("the token was logged:\n%s", logged.String())
	}
	if !strings.Contains(logged.String(), "readable only by its owner") {
		t.Fatalf("the change was not logged:\n%s", logged.String())
	}
}

// On Windows the mode bits mean only "read-only": the file is left alone.
func TestMakePrivateDoesNothingOnWindows(t *testing.T) {
	path := withTokenFile(t, 0o644)
	e := testEditor(t)
	e.goos = "windows"
	cfg, err := e.Load(Cursor, path)
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := cfg.MakePrivate(testToken); changed || err != nil {
		t.Fatalf("changed %v, %v", changed, err)
	}
	assertMode(t, path, 0o644)
}

// A file with a mistake in it is never edited, but one that holds the token
// is still made private; one without it is untouched.
func TestEditorMakePrivateNeedsNoParse(t *testing.T) {
	e := testEditor(t)
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.json")
	writeFile(t, broken, `{"mcpServers": {"countersign-github": {"url": "http://127.0.0.1:39217/servers/github/mcp", "headers": {"Authorization": "Bearer `+testToken+`"}}`)
	os.Chmod(broken, 0o644)
	if _, err := e.Load(Cursor, broken); err == nil {
		t.Fatal("the test is wrong: the file parses")
	}
	if changed, err := e.MakePrivate(Cursor, broken, testToken); !changed || err != nil {
		t.Fatalf("changed %v, %v", changed, err)
	}
	assertMode(t, broken, 0o600)

	plain := filepath.Join(dir, "plain.json")
	writeFile(t, plain, `{"mcpServers": {`)
	os.Chmod(plain, 0o644)
	if changed, err := e.MakePrivate(Cursor, plain, testToken); changed || err != nil {
		t.Fatalf("changed %v, %v", changed, err)
	}
	assertMode(t, plain, 0o644)
	if changed, err := e.MakePrivate(Cursor, filepath.Join(dir, "missing.json"), testToken); changed || err != nil {
		t.Fatalf("a missing file: changed %v, %v", changed, err)
	}
}
