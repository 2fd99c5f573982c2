package config

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// quiet discards the log lines of stores and watchers under test.
var quiet = slog.New(slog.DiscardHandler)

func addServer(id string) func(*Config) error {
	return func(c *Config) error {
		c.Servers = append(c.Servers, Server{ID: id, Kind: "github", Allowlist: map[string][]string{"github-repository": {"DEFRA/" + id}}})
		return nil
	}
}

// noTemps fails if a temporary file was left next to the settings.
func noTemps(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestUpdateCreatesAPrivateFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Countersign")
	path := filepath.Join(dir, "settings.json")
	s := NewStore(path, StoreOptions{Logger: quiet})
	if err := s.Update(addServer("gh")); err != nil {
		t.Fatal(err)
	}
	c, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	want := Defaults()
	want.Servers = []Server{{ID: "gh", Kind: "github", Allowlist: map[string][]string{"github-repository": {"DEFRA/gh"}}}}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), `"version": 2`) {
		t.Fatalf("file does not record its version:\n%s", b)
	}
	if runtime.GOOS != "windows" {
		fi, _ := os.Stat(path)
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("file mode %04o, want 0600", m)
		}
		di, _ := os.Stat(dir)
		if m := di.Mode().Perm(); m != 0o700 {
			t.Errorf("directory mode %04o, want 0700", m)
		}
	}
	noTemps(t, dir)
}

func TestUpdateMigratesAnOldFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "settings.json")
	os.WriteFile(path, []byte(`{"port": 4000, "servers": [{"id": "local", "transport": "stdio", "command": "node"}]}`), 0o644)
	s := NewStore(path, StoreOptions{Logger: quiet})
	if err := s.Update(func(c *Config) error { c.StartAtLogin = true; return nil }); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	want := `{
  "version": 2,
  "port": 4000,
  "approvalTimeout": "5m0s",
  "startAtLogin": true,
  "auditRetentionDays": 180,
  "servers": [
    {
      "id": "local",
      "transport": "stdio",
      "command": "node"
    }
  ]
}
`
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if fi, _ := os.Stat(path); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o after replacing a 0644 file, want 0600", fi.Mode().Perm())
	}
}

func TestUpdateWritesNothingWhenRefused(t *testing.T) {
	errNo := errors.New("no")
	tests := []struct {
		name string
		opts StoreOptions
		fn   func(*Config) error
		want string
	}{
		{"fn fails", StoreOptions{Logger: quiet}, func(*Config) error { return errNo }, "no"},
		{"result invalid", StoreOptions{Logger: quiet}, func(c *Config) error { c.Servers = append(c.Servers, Server{ID: "Bad Id", Kind: "github"}); return nil },
			`not saving settings: servers[1].id: "Bad Id" must be lower-case`},
		{"duplicate id", StoreOptions{Logger: quiet}, addServer("gh"), `not saving settings: servers[1].id: "gh" is used twice`},
		{"checks refuse a pattern", StoreOptions{Logger: quiet, Checks: Checks{Pattern: func(k, target, p string) error {
			if p == "DEFRA/new" {
				return errors.New("bad pattern")
			}
			return nil
		}}}, addServer("new"), "not saving settings: servers[1].allowlist.github-repository[0]: bad pattern"},
		{"guard refuses", StoreOptions{Logger: quiet, Guard: func(old, next *Config) error {
			if len(next.Servers) > len(old.Servers) {
				return errors.New("policy says no")
			}
			return nil
		}}, addServer("new"), "not saving settings: policy says no"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "settings.json")
			if err := NewStore(path, StoreOptions{Logger: quiet}).Update(addServer("gh")); err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadFile(path)
			err := NewStore(path, tt.opts).Update(tt.fn)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Update = %v, want %q", err, tt.want)
			}
			after, _ := os.ReadFile(path)
			if string(before) != string(after) {
				t.Fatalf("file changed by a refused update:\n%s", after)
			}
			noTemps(t, filepath.Dir(path))
		})
	}
}

func TestUpdateLeavesABrokenFileAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "settings.json")
	broken := "{\"servers\": [\n{\"id\": \"a\",}]}"
	os.WriteFile(path, []byte(broken), 0o600)
	err := NewStore(path, StoreOptions{Logger: quiet}).Update(addServer("gh"))
	if err == nil || !strings.Contains(err.Error(), "not saving over settings that cannot be read") || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("Update = %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != broken {
		t.Fatalf("broken file replaced:\n%s", b)
	}
}

// TestConcurrentUpdatesAreSerialised adds servers from many goroutines while
// others read the file: no update is lost, and no reader sees a partial file.
func TestConcurrentUpdatesAreSerialised(t *testing.T) {
	path := filepath.Join(t.TempDir(), "settings.json")
	s := NewStore(path, StoreOptions{Logger: quiet})
	if err := s.Update(func(*Config) error { return nil }); err != nil {
		t.Fatal(err)
	}
	const writers = 16
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readErr := make(chan error, 1)
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := Load(path); err != nil {
					select {
					case readErr <- err:
					default:
					}
					return
				}
			}
		})
	}
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			if err := s.Update(addServer(fmt.Sprintf("s%d", i))); err != nil {
				t.Errorf("Update: %v", err)
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	select {
	case err := <-readErr:
		t.Fatalf("a reader saw a partial file: %v", err)
	default:
	}
	c, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Servers) != writers {
		t.Fatalf("%d servers after %d concurrent adds: updates were lost", len(c.Servers), writers)
	}
	noTemps(t, filepath.Dir(path))
}

func TestWriteFailureLeavesNoTempFile(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "settings.json")
	// A non-empty directory in the way makes the rename fail.
	os.MkdirAll(filepath.Join(target, "x"), 0o700)
	if err := writeFileAtomic(target, []byte("{}")); err == nil || !strings.Contains(err.Error(), "replacing") {
		t.Fatalf("writeFileAtomic = %v, want a rename error", err)
	}
	noTemps(t, dir)
}

func TestUpdateHandsFnACopy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "settings.json")
	var seenOld *Config
	s := NewStore(path, StoreOptions{Logger: quiet, Guard: func(old, next *Config) error {
		seenOld = old
		return nil
	}})
	if err := s.Update(func(c *Config) error {
		c.ApprovalTimeout = Duration(time.Minute)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if time.Duration(seenOld.ApprovalTimeout) != DefaultApprovalTimeout {
		t.Fatalf("Guard's old settings were changed by fn: %v", time.Duration(seenOld.ApprovalTimeout))
	}
}
