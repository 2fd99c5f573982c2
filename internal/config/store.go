package config

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
)

// StoreOptions configure a Store.
type StoreOptions struct {
	// Checks validate catalog kinds, parameters and allowlist patterns
	// before anything is written.
	Checks Checks
	// Guard, when set, may refuse an edit, given the settings before and
	// after it; the app passes the current Effective's CheckEdit so that
	// the person cannot add what the admin policy forbids.
	Guard func(old, next *Config) error
	// Saved, when set, is told what was written after each save, under the
	// store's lock; the app passes the Watcher's Saved, so that the
	// person's own change is not taken for one made outside the app.
	Saved  func(b []byte)
	Logger *slog.Logger
}

// Store owns the settings file: it serialises updates, validates them
// before writing, and writes atomically (temp file in the same directory,
// fsync, rename) with mode 0600 in a 0700 directory. Settings hold no
// secrets, so neither does anything it writes.
type Store struct {
	path   string
	checks Checks
	guard  func(old, next *Config) error
	saved  func(b []byte)
	log    *slog.Logger

	mu sync.Mutex // serialises Update: read, change, write
}

// NewStore returns a Store for the settings file at path.
func NewStore(path string, o StoreOptions) *Store {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Store{path: path, checks: o.Checks, guard: o.Guard, saved: o.Saved, log: log}
}

// Path is the settings file the store owns.
func (s *Store) Path() string { return s.path }

// Load reads the settings as they are on disk now (migrated in memory).
func (s *Store) Load() (*Config, error) { return Load(s.path) }

// Update reads the settings from disk, lets fn change them, validates the
// result (with the store's Checks and Guard) and saves it at
// CurrentVersion. Nothing is written when fn or validation fails, or when
// the file on disk cannot be read: a file the person broke by hand is never
// replaced behind their back. Calls are serialised.
func (s *Store) Update(fn func(*Config) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, err := Load(s.path)
	if err != nil {
		return fmt.Errorf("not saving over settings that cannot be read: %w", err)
	}
	next := old.Clone()
	if err := fn(next); err != nil {
		return err
	}
	next.Version = CurrentVersion
	next.setDefaults()
	if err := next.Check(s.checks); err != nil {
		return fmt.Errorf("not saving settings: %w", err)
	}
	if s.guard != nil {
		if err := s.guard(old, next); err != nil {
			return fmt.Errorf("not saving settings: %w", err)
		}
	}
	return s.writeLocked(next)
}

// Replace writes c as the settings file, whatever the file holds now: the
// app keeps the settings in force this way when the person refuses a change
// made to the file outside Countersign. c is validated (without the
// store's Checks and Guard: they were in force already) but not changed.
func (s *Store) Replace(c *Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := c.Clone()
	next.Version = CurrentVersion
	next.setDefaults()
	if err := next.Validate(); err != nil {
		return fmt.Errorf("not saving settings: %w", err)
	}
	return s.writeLocked(next)
}

func (s *Store) writeLocked(next *Config) error {
	b, err := next.Marshal()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(s.path, b); err != nil {
		return fmt.Errorf("saving settings: %w", err)
	}
	s.log.Info("settings saved", "path", s.path, "servers", len(next.Servers))
	if s.saved != nil {
		s.saved(b)
	}
	return nil
}

// writeFileAtomic replaces path with data so that a reader sees either the
// old file or the new one, never a part.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("creating a temporary file: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		return fmt.Errorf("setting the mode of %s: %w", tmp, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("flushing %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	syncDir(dir)
	return nil
}

// syncDir makes the rename durable where the OS allows syncing a directory;
// Windows and some file systems cannot, and the rename has happened anyway.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	d.Close()
}
