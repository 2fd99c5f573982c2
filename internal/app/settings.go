package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/gate"
)

// Bounds on the approval timeout, as config.Validate enforces them.
const (
	minTimeout = 10 * time.Second
	maxTimeout = 24 * time.Hour
)

// Settings is the settings window's view of the app: the servers, their
// allowlists, the approval timeout and start at login. Changes are saved
// to the settings file at once and take effect without a restart.
type Settings struct {
	path  string
	q     *gate.Queue
	log   *slog.Logger
	login autostart

	mu  sync.Mutex
	cfg *config.Config // as last loaded or saved
}

func newSettings(path string, cfg *config.Config, q *gate.Queue, log *slog.Logger) *Settings {
	return &Settings{path: path, q: q, log: log, cfg: cfg, login: defaultAutostart(path)}
}

func (s *Settings) config() *config.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

func (s *Settings) server(id string) (config.Server, error) {
	srv, ok := s.config().Server(id)
	if !ok {
		return config.Server{}, fmt.Errorf("there is no server %q in the settings", id)
	}
	return srv, nil
}

// Servers lists the configured servers.
func (s *Settings) Servers(ctx context.Context) ([]ServerStatus, error) {
	cfg := s.config()
	out := make([]ServerStatus, 0, len(cfg.Servers))
	for _, srv := range cfg.Servers {
		st := ServerStatus{ID: srv.ID, Name: srv.DisplayName(), Transport: srv.Transport, Endpoint: srv.URL}
		if srv.Transport == config.TransportStdio {
			st.Endpoint = strings.Join(append([]string{srv.Command}, srv.Args...), " ")
			st.State = "Runs on this computer"
			st.SignInUnavailable = "This server runs on this computer, so there is nothing to sign in to."
		} else {
			st.State = "Used without sign-in"
			st.SignInUnavailable = "Signing in with OAuth is not available in this version yet."
		}
		out = append(out, st)
	}
	return out, nil
}

// SignIn signs in to a server; this version cannot yet.
func (s *Settings) SignIn(ctx context.Context, serverID string) error {
	if _, err := s.server(serverID); err != nil {
		return err
	}
	return fmt.Errorf("%w: signing in with OAuth is not available in this version yet", ErrNotAvailable)
}

// SignOut signs out of a server; this version cannot yet.
func (s *Settings) SignOut(ctx context.Context, serverID string) error {
	if _, err := s.server(serverID); err != nil {
		return err
	}
	return fmt.Errorf("%w: signing in with OAuth is not available in this version yet", ErrNotAvailable)
}

const noAllowlists = "Allowlists are not available in this version yet: calls may touch any repository or project, and every call still waits for your approval."

// Allowlist returns a server's allowlist; this version has none yet.
func (s *Settings) Allowlist(ctx context.Context, serverID string) (Allowlist, error) {
	if _, err := s.server(serverID); err != nil {
		return Allowlist{}, err
	}
	return Allowlist{Kind: "repositories or projects", Unavailable: noAllowlists}, nil
}

// CheckAllowEntry checks an allowlist pattern; this version has no
// allowlists yet.
func (s *Settings) CheckAllowEntry(serverID, pattern string) error {
	return fmt.Errorf("%w: %s", ErrNotAvailable, noAllowlists)
}

// SetAllowlist replaces a server's allowlist; this version has none yet.
func (s *Settings) SetAllowlist(ctx context.Context, serverID string, patterns []string) error {
	return fmt.Errorf("%w: %s", ErrNotAvailable, noAllowlists)
}

// Timeout returns the approval timeout and its bounds.
func (s *Settings) Timeout(ctx context.Context) (TimeoutSetting, error) {
	return TimeoutSetting{Value: time.Duration(s.config().ApprovalTimeout), Min: minTimeout, Max: maxTimeout}, nil
}

// SetTimeout saves a new approval timeout; calls arriving from now on use
// it.
func (s *Settings) SetTimeout(ctx context.Context, d time.Duration) error {
	if d < minTimeout || d > maxTimeout {
		return fmt.Errorf("the timeout must be between %v and %v", minTimeout, maxTimeout)
	}
	cfg, err := s.update("approvalTimeout", config.Duration(d))
	if err != nil {
		return err
	}
	s.q.SetTimeout(time.Duration(cfg.ApprovalTimeout))
	s.log.Info("approval timeout changed", "timeout", d.String())
	return nil
}

// StartAtLogin says whether Countersign starts when the person logs in.
func (s *Settings) StartAtLogin(ctx context.Context) (LoginSetting, error) {
	return s.login.state()
}

// SetStartAtLogin turns starting at login on or off.
func (s *Settings) SetStartAtLogin(ctx context.Context, on bool) error {
	return s.login.set(on)
}

// update sets one top-level field of the settings file, leaving every
// other field as written, checks the result and saves it atomically.
func (s *Settings) update(field string, value any) (*config.Config, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	raw := map[string]json.RawMessage{}
	b, err := os.ReadFile(s.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		raw["servers"] = json.RawMessage("[]")
	case err != nil:
		return nil, fmt.Errorf("reading settings: %w", err)
	default:
		if err := json.Unmarshal(b, &raw); err != nil {
			return nil, fmt.Errorf("settings %s: not saved, the file is not valid JSON: %w", s.path, err)
		}
	}
	v, err := json.Marshal(value)
	if err != nil {
		return nil, err
	}
	raw[field] = v
	out, err := json.MarshalIndent(raw, "", "  ")
	if err != nil {
		return nil, err
	}
	out = append(out, '\n')
	cfg, err := config.Parse(out)
	if err != nil {
		return nil, fmt.Errorf("settings not saved: %w", err)
	}
	if err := writeAtomic(s.path, out); err != nil {
		return nil, err
	}
	s.cfg = cfg
	return cfg, nil
}

// writeAtomic replaces path with b so that a reader sees the old file or
// the new one, never a mixture.
func writeAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("saving settings: %w", err)
	}
	f, err := os.CreateTemp(dir, ".settings-*.json")
	if err != nil {
		return fmt.Errorf("saving settings: %w", err)
	}
	defer os.Remove(f.Name()) // no-op after the rename
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("saving settings: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("saving settings: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("saving settings: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("saving settings: %w", err)
	}
	return nil
}
