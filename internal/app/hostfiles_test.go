package app

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/testenv"
	"github.com/countersign/countersign/internal/vault"
	"github.com/countersign/countersign/internal/vault/vaulttest"
)

// httpEntryWith is an AI app file holding Countersign's entry for github
// with token, as an older Countersign wrote it.
func httpEntryWith(serversKey string, port int, token string) string {
	return fmt.Sprintf(`{"%s": {"countersign-github": {"type": "http", "url": "http://127.0.0.1:%d/servers/github/mcp", "headers": {"Authorization": "Bearer %s"}}}}`,
		serversKey, port, token)
}

func assertFileMode(t *testing.T, p string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %v, want %v", p, got, want)
	}
}

// When the Connect window loads the AI apps' files, one that holds the
// token readable by everyone (0644, left by an older Countersign or the
// person) becomes readable only by its owner; one without it is untouched.
func TestConnectOverviewMakesFilesWithTheTokenPrivate(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes only set the read-only flag on Windows")
	}
	e := newConnectEnv(t, connectSettings)
	writeTestFile(t, e.vscode(), httpEntryWith("servers", 39217, connectToken))
	writeTestFile(t, e.cursor(), unrelatedForConnect)
	for _, p := range []string{e.vscode(), e.cursor()} {
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ov := e.overview(t)
	if got := host(t, ov, "vscode").Connected; len(got) != 1 || got[0] != "github" {
		t.Fatalf("the test is wrong: VS Code's entry was not recognised: %v", got)
	}
	assertFileMode(t, e.vscode(), 0o600)
	assertFileMode(t, e.cursor(), 0o644)
	if !strings.Contains(e.log.String(), "readable only by its owner") {
		t.Errorf("not logged:\n%s", e.log)
	}
}

const unrelatedForConnect = `{"mcpServers": {"context7": {"url": "https://mcp.context7.com/mcp"}}}`

// At start, before the Connect window is ever opened, Countersign makes an
// AI app's file that holds its token readable only by its owner.
func TestStartMakesFilesWithTheTokenPrivate(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes only set the read-only flag on Windows")
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	kr := vaulttest.NewKeyring()
	token, err := vault.Open(vault.Options{Keyring: kr}).LocalToken()
	if err != nil {
		t.Fatal(err)
	}
	port := testenv.FreePort(t)
	withToken := filepath.Join(home, ".cursor", "mcp.json")
	writeTestFile(t, withToken, httpEntryWith("mcpServers", port, token))
	// VS Code: launch puts XDG_CONFIG_HOME beside the settings file.
	dir := t.TempDir()
	without := filepath.Join(dir, "xdg", "Code", "User", "mcp.json")
	writeTestFile(t, without, unrelatedForConnect)
	// VS Code Insiders: a mistake in the file, the token in it all the same.
	broken := filepath.Join(dir, "xdg", "Code - Insiders", "User", "mcp.json")
	writeTestFile(t, broken, strings.TrimSuffix(httpEntryWith("servers", port, token), "}"))
	for _, p := range []string{withToken, without, broken} {
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := filepath.Join(dir, "settings.json")
	writeTestFile(t, cfgPath, fmt.Sprintf(`{"port":%d,"servers":[]}`, port))
	launch(t, cfgPath, kr, port) // returns once the app listens
	assertFileMode(t, withToken, 0o600)
	assertFileMode(t, broken, 0o600)
	assertFileMode(t, without, 0o644)
}
