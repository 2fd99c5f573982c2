package app

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/gate"
	"github.com/google/go-cmp/cmp"
)

func newTestSettings(t *testing.T, file string) (*Settings, *gate.Queue, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "Countersign", "settings.json")
	if file != "" {
		os.MkdirAll(filepath.Dir(path), 0o700)
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	q := gate.New(gate.Options{Timeout: time.Duration(cfg.ApprovalTimeout)})
	t.Cleanup(q.Close)
	s := newSettings(path, cfg, q, quietLog())
	s.login = autostart{file: filepath.Join(t.TempDir(), "autostart", "countersign.desktop"), command: []string{"/opt/Count ersign/countersign", `-config`, `/tmp/a "b"$c\d%e`}}
	return s, q, path
}

const twoServers = `{
  "port": 40000,
  "allowedOrigins": ["https://claude.ai"],
  "servers": [
    {"id": "github", "name": "GitHub", "transport": "streamable-http", "url": "https://api.githubcopilot.com/mcp/"},
    {"id": "local", "transport": "stdio", "command": "node", "args": ["server.js", "--quiet"]}
  ]
}`

func TestSettingsServers(t *testing.T) {
	s, _, _ := newTestSettings(t, twoServers)
	got, err := s.Servers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []ServerStatus{
		{ID: "github", Name: "GitHub", Transport: "streamable-http", Endpoint: "https://api.githubcopilot.com/mcp/",
			State: "Used without sign-in", SignInUnavailable: "Signing in with OAuth is not available in this version yet."},
		{ID: "local", Name: "local", Transport: "stdio", Endpoint: "node server.js --quiet",
			State: "Runs on this computer", SignInUnavailable: "This server runs on this computer, so there is nothing to sign in to."},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func TestSettingsNotYetAvailable(t *testing.T) {
	s, _, _ := newTestSettings(t, twoServers)
	ctx := context.Background()
	for name, err := range map[string]error{
		"sign in":         s.SignIn(ctx, "github"),
		"sign out":        s.SignOut(ctx, "github"),
		"check entry":     s.CheckAllowEntry("github", "DEFRA/*"),
		"set allowlist":   s.SetAllowlist(ctx, "github", []string{"DEFRA/*"}),
		"verify the log":  func() error { _, err := newSessionLog(1, &config.Config{}).Verify(ctx); return err }(),
		"sign in unknown": s.SignIn(ctx, "nope"),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if name == "sign in unknown" {
			if errors.Is(err, ErrNotAvailable) || !strings.Contains(err.Error(), `no server "nope"`) {
				t.Errorf("%s: %v", name, err)
			}
		} else if !errors.Is(err, ErrNotAvailable) {
			t.Errorf("%s: %v is not ErrNotAvailable", name, err)
		}
	}
	al, err := s.Allowlist(ctx, "github")
	if err != nil || al.Unavailable == "" {
		t.Errorf("Allowlist = %+v, %v; want it to say why it is unavailable", al, err)
	}
}

func TestSettingsSetTimeout(t *testing.T) {
	t.Run("saves, keeps the other fields and applies at once", func(t *testing.T) {
		s, _, path := newTestSettings(t, twoServers)
		if err := s.SetTimeout(context.Background(), 90*time.Second); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(path)
		var got, want map[string]any
		json.Unmarshal(b, &got)
		json.Unmarshal([]byte(twoServers), &want)
		want["approvalTimeout"] = "1m30s"
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("file (-want +got)\n%s", diff)
		}
		if ts, _ := s.Timeout(context.Background()); ts.Value != 90*time.Second {
			t.Errorf("Timeout = %v", ts.Value)
		}
		info, _ := os.Stat(path)
		if info.Mode().Perm() != 0o600 {
			t.Errorf("file mode %v, want 0600", info.Mode().Perm())
		}
		entries, _ := os.ReadDir(filepath.Dir(path))
		if len(entries) != 1 {
			t.Errorf("temporary files left behind: %v", entries)
		}
	})
	t.Run("new calls get the new timeout", func(t *testing.T) {
		s, q, _ := newTestSettings(t, twoServers)
		s.SetTimeout(context.Background(), 42*time.Second)
		sub := q.Subscribe()
		defer sub.Close()
		go q.Submit(context.Background(), gate.Call{Server: "github", Tool: "t"})
		ev := <-sub.Events()
		if got := ev.Call.Deadline.Sub(ev.Call.Received); got != 42*time.Second {
			t.Errorf("the call waits %v, want 42s", got)
		}
	})
	t.Run("creates a missing file", func(t *testing.T) {
		s, _, path := newTestSettings(t, "")
		if err := s.SetTimeout(context.Background(), time.Minute); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(path)
		if err != nil || time.Duration(cfg.ApprovalTimeout) != time.Minute {
			t.Fatalf("reloaded %+v, %v", cfg, err)
		}
	})
	for _, d := range []time.Duration{time.Second, 25 * time.Hour} {
		t.Run("refuses "+d.String(), func(t *testing.T) {
			s, _, path := newTestSettings(t, twoServers)
			if err := s.SetTimeout(context.Background(), d); err == nil {
				t.Fatal("no error")
			}
			if b, _ := os.ReadFile(path); string(b) != twoServers {
				t.Error("the file changed")
			}
		})
	}
	t.Run("refuses to overwrite a broken file", func(t *testing.T) {
		s, _, path := newTestSettings(t, twoServers)
		os.WriteFile(path, []byte(`{"servers": [`), 0o600)
		if err := s.SetTimeout(context.Background(), time.Minute); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
			t.Fatalf("SetTimeout = %v", err)
		}
		if b, _ := os.ReadFile(path); string(b) != `{"servers": [` {
			t.Error("the broken file was overwritten")
		}
	})
}

func TestStartAtLogin(t *testing.T) {
	s, _, _ := newTestSettings(t, twoServers)
	ctx := context.Background()
	if l, err := s.StartAtLogin(ctx); err != nil || l.On || l.Unavailable != "" {
		t.Fatalf("initially %+v, %v", l, err)
	}
	if err := s.SetStartAtLogin(ctx, true); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.StartAtLogin(ctx); !l.On {
		t.Error("not on after turning it on")
	}
	b, err := os.ReadFile(s.login.file)
	if err != nil {
		t.Fatal(err)
	}
	wantExec := `Exec="/opt/Count ersign/countersign" "-config" "/tmp/a \\"b\\"\\$c\\\\d%%e"`
	if !strings.Contains(string(b), "\n"+wantExec+"\n") || !strings.HasPrefix(string(b), "[Desktop Entry]\n") {
		t.Errorf("entry:\n%s\nwant the line %s", b, wantExec)
	}
	if err := s.SetStartAtLogin(ctx, false); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.StartAtLogin(ctx); l.On {
		t.Error("still on after turning it off")
	}
	if err := s.SetStartAtLogin(ctx, false); err != nil {
		t.Errorf("turning it off twice: %v", err)
	}
	s.login = autostart{unavailable: "not here"}
	if l, _ := s.StartAtLogin(ctx); l.Unavailable != "not here" {
		t.Errorf("unsupported system: %+v", l)
	}
	if err := s.SetStartAtLogin(ctx, true); !errors.Is(err, ErrNotAvailable) {
		t.Errorf("unsupported system: SetStartAtLogin = %v", err)
	}
}
