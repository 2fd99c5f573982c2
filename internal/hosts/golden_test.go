package hosts

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// golden compares got with testdata/golden/<name>, or rewrites it with
// -update. A missing golden fails. A mismatch is written to testdata/failed.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("golden file missing (run go test -update): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		failed := filepath.Join("testdata", "failed", name)
		_ = os.MkdirAll(filepath.Dir(failed), 0o755)
		_ = os.WriteFile(failed, got, 0o644)
		t.Errorf("%s differs (-want +got), actual output in %s:\n%s", p, failed, diff)
	}
}

const (
	testToken  = "c0ffee00c0ffee11c0ffee22c0ffee33c0ffee44c0ffee55c0ffee66c0ffee77"
	testBridge = "/opt/countersign/bin/countersign-bridge"
	testPort   = 39217
)

var testTarget = Target{BridgePath: testBridge, Port: testPort, Token: testToken}

var testNow = time.Date(2026, 11, 21, 10, 15, 0, 0, time.UTC)

func testEditor(t testing.TB) *Editor {
	e := NewEditor(slog.New(slog.NewTextHandler(io.Discard, nil)))
	e.now = func() time.Time { return testNow }
	return e
}

// fileName is the host's real configuration file name.
func fileName(h Host) string {
	if h == ClaudeDesktop {
		return "claude_desktop_config.json"
	}
	return "mcp.json"
}

type shapeCase struct {
	name    string
	input   []byte // nil: no file
	exactRT bool   // connect then disconnect gives back the input bytes
}

// shapes lists every file shape tested for host h: shared shapes with the
// host's server key filled in, the host's own files, and CRLF and BOM
// variants of its "unrelated" file.
func shapes(t *testing.T, h Host) []shapeCase {
	t.Helper()
	key := specs[h].serversKey
	exact := map[string]bool{
		"unrelated": true, "comments": true, "crlf": true, "bom": true, "compact": true,
		"trailing-comment": true, "empty-servers-comment": true, "one-line-empty-servers": true,
	}
	out := []shapeCase{{name: "missing"}}
	for _, dir := range []string{"common", string(h)} {
		ents, err := os.ReadDir(filepath.Join("testdata", "in", dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, ent := range ents {
			data, err := os.ReadFile(filepath.Join("testdata", "in", dir, ent.Name()))
			if err != nil {
				t.Fatal(err)
			}
			name := strings.TrimSuffix(ent.Name(), ".json")
			data = bytes.ReplaceAll(data, []byte("@KEY@"), []byte(key))
			out = append(out, shapeCase{name: name, input: data, exactRT: exact[name]})
			if name == "unrelated" {
				crlf := bytes.ReplaceAll(data, []byte("\n"), []byte("\r\n"))
				out = append(out,
					shapeCase{name: "crlf", input: crlf, exactRT: true},
					shapeCase{name: "bom", input: append(slices.Clone(utf8BOM), data...), exactRT: true})
			}
		}
	}
	return out
}

// TestShapes runs connect, save, reconnect and disconnect on every file shape
// for every host and compares each step with a golden file, checking the
// promises around it: backups, idempotence, atomic writes, modes, masking
// and exact round trips.
func TestShapes(t *testing.T) {
	for _, h := range []Host{ClaudeDesktop, VSCode, Cursor} {
		for _, sc := range shapes(t, h) {
			t.Run(string(h)+"/"+sc.name, func(t *testing.T) {
				var g bytes.Buffer
				runShape(t, h, sc, &g)
				golden(t, filepath.Join(string(h), sc.name+".txt"), g.Bytes())
			})
		}
	}
}

func runShape(t *testing.T, h Host, sc shapeCase, g *bytes.Buffer) {
	dir := t.TempDir()
	path := filepath.Join(dir, fileName(h))
	clean := func(s string) string { return strings.ReplaceAll(s, dir, "$DIR") }
	if sc.input != nil {
		if err := os.WriteFile(path, sc.input, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e := testEditor(t)
	fmt.Fprintf(g, "# %s: %s\n", h.Name(), sc.name)

	cfg, err := e.Load(h, path)
	if err != nil {
		fmt.Fprintf(g, "load error: %s\n", clean(err.Error()))
		assertUntouched(t, dir, path, sc.input)
		return
	}
	if err := cfg.Connect(testTarget, "github", "atlassian"); err != nil {
		fmt.Fprintf(g, "connect error: %s\n", clean(err.Error()))
		if cfg.Changed() {
			t.Error("a failed Connect left changes behind")
		}
		assertUntouched(t, dir, path, sc.input)
		return
	}
	writeStep(g, "connect github atlassian", cfg, clean)
	saved, err := cfg.Save()
	if err != nil {
		t.Fatalf("Save: %v", err)
	}
	after := readFile(t, path)
	fmt.Fprintf(g, "## file after\n%s", after)
	if !bytes.HasSuffix(after, []byte("\n")) {
		g.WriteString("\n## (no final newline)\n")
	}

	changed := !bytes.Equal(after, sc.input)
	switch {
	case sc.input == nil && saved.Backup != "":
		t.Errorf("backup %s of a file that did not exist", saved.Backup)
	case sc.input != nil && changed && saved.Backup == "":
		t.Error("changed an existing file without a backup")
	case saved.Backup != "":
		if got := readFile(t, saved.Backup); !bytes.Equal(got, sc.input) {
			t.Errorf("backup holds %q, want the original %q", got, sc.input)
		}
		if want := path + ".countersign-backup-20261121T101500Z"; saved.Backup != want {
			t.Errorf("backup at %s, want %s", saved.Backup, want)
		}
	}
	wantMode := os.FileMode(0o644)
	if sc.input == nil || specs[h].kind == httpEntry && changed {
		wantMode = 0o600 // new, or written with the token in it
	}
	assertMode(t, path, wantMode)
	if specs[h].kind == httpEntry && !bytes.Contains(after, []byte(testToken)) {
		t.Error("the host file lacks the local token it needs")
	}

	// Idempotence: the same edit again changes nothing and backs up nothing.
	again, err := e.Load(h, path)
	if err != nil {
		t.Fatalf("reloading what was written: %v", err)
	}
	if err := again.Connect(testTarget, "github", "atlassian"); err != nil {
		t.Fatal(err)
	}
	if again.Changed() || len(again.Changes()) > 0 || again.Diff() != "" {
		t.Errorf("second Connect changed %v:\n%s", again.Changes(), again.Diff())
	}
	if s, err := again.Save(); err != nil || s.Path != "" || s.Backup != "" {
		t.Errorf("second Save = %+v, %v; want nothing written", s, err)
	}
	if n := len(backups(t, dir)); n != b2i(sc.input != nil && changed) {
		t.Errorf("%d backups, want %d", n, b2i(sc.input != nil && changed))
	}
	if got := again.Connected(); !cmp.Equal(sortedCopy(got), []string{"atlassian", "github"}) {
		t.Errorf("Connected() = %v", got)
	}

	// Round trip: removing Countersign's entries gives the file back.
	rm, err := e.Load(h, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := rm.Disconnect(); err != nil {
		t.Fatal(err)
	}
	writeStep(g, "disconnect", rm, clean)
	if _, err := rm.Save(); err != nil {
		t.Fatal(err)
	}
	removed := readFile(t, path)
	fmt.Fprintf(g, "## file after\n%s", removed)
	if !bytes.HasSuffix(removed, []byte("\n")) {
		g.WriteString("\n## (no final newline)\n")
	}
	if sc.exactRT && !bytes.Equal(removed, sc.input) {
		t.Errorf("round trip lost bytes:\n%s", cmp.Diff(string(sc.input), string(removed)))
	}
	assertMode(t, path, wantMode) // no token left, and the mode it had
	assertNoTemp(t, dir)
}

// writeStep writes an edit's change list and diff, checking neither shows the
// token.
func writeStep(g *bytes.Buffer, step string, cfg *Config, clean func(string) string) {
	fmt.Fprintf(g, "## %s\n", step)
	for _, c := range cfg.Changes() {
		fmt.Fprintf(g, "- %s\n", c)
	}
	if len(cfg.Changes()) == 0 {
		g.WriteString("(no changes)\n")
	}
	diff := cfg.Diff()
	if strings.Contains(diff, testToken) || strings.Contains(strings.Join(cfg.Changes(), " "), testToken) {
		panic("the local token is shown to the person")
	}
	fmt.Fprintf(g, "## diff\n%s", clean(diff))
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func assertMode(t *testing.T, p string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s has mode %v, want %v", p, got, want)
	}
}

func backups(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+backupInfix+"*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, ".*countersign-tmp-*"))
	if len(m) > 0 {
		t.Errorf("temporary files left behind: %v", m)
	}
}

// assertUntouched checks that a refused edit left the directory as it was:
// the file (or its absence) and nothing else.
func assertUntouched(t *testing.T, dir, path string, input []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	switch {
	case input == nil && err == nil:
		t.Error("a file was created")
	case input != nil && !bytes.Equal(got, input):
		t.Errorf("file changed to %q", got)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) > b2i(input != nil) {
		t.Errorf("unexpected files: %v", ents)
	}
}
