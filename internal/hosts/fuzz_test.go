package hosts

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tailscale/hujson"
)

// FuzzEdit feeds arbitrary host files through parsing and every edit. It
// checks that nothing panics, that a file that does not parse is refused
// with a located *SyntaxError (so it can never be written), and that every
// edit of a file that does parse yields a file the host can read, with the
// person's content unchanged and the edit undone by its inverse.
func FuzzEdit(f *testing.F) {
	for _, dir := range []string{"common", "claude-desktop", "vscode", "cursor"} {
		ents, _ := os.ReadDir(filepath.Join("testdata", "in", dir))
		for _, ent := range ents {
			data, _ := os.ReadFile(filepath.Join("testdata", "in", dir, ent.Name()))
			for hs := range uint8(3) {
				key := specs[fuzzHosts[hs]].serversKey
				f.Add(bytes.ReplaceAll(data, []byte("@KEY@"), []byte(key)), hs)
			}
		}
	}
	f.Add([]byte(directVSCode), uint8(1))
	f.Add([]byte("\xef\xbb\xbf{\r\n  \"mcpServers\": {\r\n  }\r\n}"), uint8(2))
	f.Add([]byte(`{"mcpServers": {"a": {"command": "x"} /* c */ , "b": 1 // d
}}`), uint8(2))
	e := NewEditor(nil)
	f.Fuzz(func(t *testing.T, data []byte, hs uint8) {
		h := fuzzHosts[hs%3]
		key := specs[h].serversKey
		cfg, err := e.parseConfig(h, "mcp.json", data)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Path != "mcp.json" {
				t.Fatalf("refused without a *SyntaxError: %v", err)
			}
			return
		}
		before := semantic(t, data, key)

		// Connect: a readable file, ours added, nothing else changed.
		err = cfg.Connect(testTarget, "github")
		if err != nil {
			var se *SyntaxError
			if !errors.Is(err, ErrConflict) && !errors.As(err, &se) {
				t.Fatalf("Connect: %v", err)
			}
			if cfg.Changed() {
				t.Fatal("a refused Connect changed the file")
			}
			return
		}
		connected := mustReparse(t, h, cfg)
		if !strings.Contains(strings.Join(connected.Connected(), ","), "github") {
			t.Fatalf("github not connected in:\n%s", cfg.bytes())
		}
		if strings.Contains(cfg.Diff(), testToken) {
			t.Fatal("diff shows the token")
		}
		after := semantic(t, cfg.bytes(), key)
		if !reflect.DeepEqual(withoutOurs(after, key, before), withoutOurs(before, key, before)) {
			t.Fatalf("Connect changed the person's content:\nbefore %v\nafter  %v\n%s", before, after, cfg.bytes())
		}
		if err := connected.Connect(testTarget, "github"); err != nil || connected.Changed() {
			t.Fatalf("second Connect: %v, changed %v", err, connected.Changes())
		}

		// Disconnect undoes it.
		if err := connected.Disconnect("github"); err != nil {
			t.Fatal(err)
		}
		mustReparse(t, h, connected)
		if got := semantic(t, connected.bytes(), key); !reflect.DeepEqual(withoutOurs(got, key, before), withoutOurs(before, key, before)) {
			t.Fatalf("Disconnect did not restore the content:\n%s", connected.bytes())
		}

		// Disable and Enable every direct entry.
		direct := cfg.FindDirect(vendorMatchers)
		var names []string
		for _, d := range direct {
			names = append(names, d.Name)
		}
		if err := cfg.Disable(names...); err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Disable: %v", err)
			}
			return
		}
		mustReparse(t, h, cfg)
		if err := cfg.Enable(names...); err != nil {
			t.Fatalf("Enable: %v", err)
		}
		mustReparse(t, h, cfg)
		if got := semantic(t, cfg.bytes(), key); !reflect.DeepEqual(got, after) {
			t.Fatalf("Disable+Enable changed the content:\n%s", cfg.bytes())
		}
	})
}

var fuzzHosts = []Host{ClaudeDesktop, VSCode, Cursor}

// mustReparse checks that what an edit produced is readable by the host.
func mustReparse(t *testing.T, h Host, cfg *Config) *Config {
	t.Helper()
	out := cfg.bytes()
	if !specs[h].jsonc {
		body, _ := bytes.CutPrefix(out, utf8BOM)
		if !json.Valid(body) {
			t.Fatalf("wrote invalid strict JSON:\n%s", out)
		}
	}
	again, err := cfg.e.parseConfig(h, "mcp.json", out)
	if err != nil {
		t.Fatalf("edit produced an unreadable file: %v\n%s", err, out)
	}
	return again
}

// semantic is the document's meaning: decoded JSON, or nil for an empty
// document.
func semantic(t *testing.T, data []byte, key string) any {
	t.Helper()
	body, _ := bytes.CutPrefix(data, utf8BOM)
	v, err := hujson.Parse(body)
	if err != nil {
		return nil // blank or comments only
	}
	return decode(v)
}

// withoutOurs removes Countersign's github entry, and the server map (or the
// whole document) if the edit created it, so what remains is the person's.
func withoutOurs(v any, key string, before any) any {
	root, ok := v.(map[string]any)
	if !ok {
		return v
	}
	b, _ := before.(map[string]any)
	_, hadKey := b[key]
	out := map[string]any{}
	for k, val := range root {
		out[k] = val
	}
	if servers, ok := out[key].(map[string]any); ok {
		s := map[string]any{}
		for k, val := range servers {
			if k != EntryName("github") {
				s[k] = val
			}
		}
		out[key] = s
		if len(s) == 0 && !hadKey {
			delete(out, key)
		}
	}
	if before == nil && len(out) == 0 {
		return nil
	}
	return out
}
