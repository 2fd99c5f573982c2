package config

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"time"
)

// WatcherOptions configure a Watcher.
type WatcherOptions struct {
	// SettingsPath is the person's settings file.
	SettingsPath string
	// PolicyPath is the admin policy file; "" means AdminPolicyPath().
	PolicyPath string
	// Checks are passed to Resolve.
	Checks Checks
	// Interval is how often the files are looked at (default 1s).
	Interval time.Duration
	Logger   *slog.Logger
}

// Watcher keeps the effective settings up to date while the app runs. It
// looks at the settings and policy files every Interval and recomputes the
// effective settings when either changes. A changed file is applied only
// once it reads the same on two looks in a row, so a file caught half-written
// is not applied; if it is still invalid then, the last good settings are
// kept (and the error reported), while an invalid policy fails closed.
type Watcher struct {
	settingsPath string
	policyPath   string
	checks       Checks
	interval     time.Duration
	log          *slog.Logger
	updates      chan *Effective

	mu          sync.Mutex // guards the fields below; held while looking at the files
	settings    watched
	policy      watched
	user        *Config // last good settings
	settingsErr error
	pol         *Policy
	polErr      error
	current     *Effective
}

// watched is what the watcher knows of one file.
type watched struct {
	applied fingerprint
	// seen is what the last look found, when it differed from applied.
	seen    fingerprint
	pending bool
}

// fingerprint identifies a file's state: content hash, mode, or why it
// could not be read.
type fingerprint struct {
	exists bool
	mode   fs.FileMode
	sum    [sha256.Size]byte
	err    string
}

type snapshot struct {
	fp   fingerprint
	b    []byte
	mode fs.FileMode
	err  error
}

func look(path string) snapshot {
	b, mode, err := readFileMode(path)
	s := snapshot{b: b, mode: mode, err: err}
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		s.fp = fingerprint{exists: true, err: err.Error()}
	default:
		s.fp = fingerprint{exists: true, mode: mode, sum: sha256.Sum256(b)}
	}
	return s
}

// NewWatcher reads both files once, so Current is ready at once.
func NewWatcher(o WatcherOptions) *Watcher {
	w := &Watcher{
		settingsPath: o.SettingsPath,
		policyPath:   o.PolicyPath,
		checks:       o.Checks,
		interval:     o.Interval,
		log:          o.Logger,
		updates:      make(chan *Effective, 1),
	}
	if w.policyPath == "" {
		w.policyPath = AdminPolicyPath()
	}
	if w.interval <= 0 {
		w.interval = time.Second
	}
	if w.log == nil {
		w.log = slog.Default()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.user = Defaults()
	w.applySettings(look(w.settingsPath))
	w.applyPolicy(look(w.policyPath))
	w.recomputeLocked(false)
	return w
}

// Current returns the latest effective settings.
func (w *Watcher) Current() *Effective {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.current
}

// Updates delivers new effective settings after each change. It holds only
// the latest: a slow reader skips to it.
func (w *Watcher) Updates() <-chan *Effective { return w.updates }

// Reload looks at both files now and applies any change at once, without
// waiting for it to settle; the app calls it after saving through a Store,
// whose writes are atomic.
func (w *Watcher) Reload() { w.poll(true) }

// Run looks at the files every Interval until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.poll(false)
		}
	}
}

func (w *Watcher) poll(force bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	changed := false
	if s, ok := w.settings.next(look(w.settingsPath), force); ok {
		w.applySettings(s)
		changed = true
	}
	if s, ok := w.policy.next(look(w.policyPath), force); ok {
		w.applyPolicy(s)
		changed = true
	}
	if changed {
		w.recomputeLocked(true)
	}
}

// next records a look at the file and reports whether to apply it: when it
// differs from what was applied and reads the same as on the previous look
// (or at once when forced).
func (f *watched) next(s snapshot, force bool) (snapshot, bool) {
	if s.fp == f.applied {
		f.pending = false
		return s, false
	}
	if !force && !(f.pending && f.seen == s.fp) {
		f.seen, f.pending = s.fp, true
		return s, false
	}
	f.applied, f.pending = s.fp, false
	return s, true
}

func (w *Watcher) applySettings(s snapshot) {
	w.settings.applied = s.fp
	switch {
	case errors.Is(s.err, fs.ErrNotExist):
		w.user, w.settingsErr = Defaults(), nil
	case s.err != nil:
		w.settingsErr = fmt.Errorf("reading settings %s: %w", w.settingsPath, s.err)
	default:
		c, err := Parse(s.b)
		if err != nil {
			w.settingsErr = fmt.Errorf("settings %s: %w", w.settingsPath, err)
			break
		}
		w.user, w.settingsErr = c, nil
	}
	if w.settingsErr != nil {
		w.log.Warn("settings file is invalid: keeping the last good settings", "err", w.settingsErr)
	}
}

func (w *Watcher) applyPolicy(s snapshot) {
	w.policy.applied = s.fp
	w.pol, w.polErr = policyFrom(w.policyPath, s.b, s.mode, s.err)
	if w.polErr != nil {
		w.log.Error("organisation policy is unusable: no server can connect", "err", w.polErr)
	}
}

// recomputeLocked makes the effective settings and, if publish, delivers them.
func (w *Watcher) recomputeLocked(publish bool) {
	var e *Effective
	if w.polErr != nil {
		e = FailClosed(w.user, w.polErr)
	} else {
		e = Resolve(w.user, w.pol, w.checks)
		if e.Err != nil {
			w.log.Error("organisation policy is unusable: no server can connect", "err", e.Err)
		}
	}
	e.SettingsErr = w.settingsErr
	w.current = e
	w.log.Info("settings applied", "servers", len(e.Servers), "policy", w.pol != nil && e.Err == nil, "failClosed", e.Err != nil)
	if !publish {
		return
	}
	// The only sender, under w.mu: after draining, the send cannot block.
	select {
	case <-w.updates:
	default:
	}
	w.updates <- e
}
