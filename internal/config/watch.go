package config

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// WatcherOptions configure a Watcher.
type WatcherOptions struct {
	// SettingsPath is the person's settings file.
	SettingsPath string
	// PolicyPath is the admin policy file, the only source of policy when
	// set (tests); "" means PolicySources.
	PolicyPath string
	// PolicySources are where the policy is read from, first wins; nil
	// means this OS's AdminPolicySources.
	PolicySources []PolicySource
	// Checks are passed to Resolve.
	Checks Checks
	// Interval is how often the files are looked at (default 1s).
	Interval time.Duration
	// OnOutsideChange, when set, hears of every change of the settings
	// file that did not come from the app's own Store (see Saved): applied
	// at once when it only narrows, or waiting for the person when it
	// widens. It is called in order, without the watcher's lock held.
	OnOutsideChange func(OutsideChange)
	// InForce, when set, is the settings last in force, as the app kept
	// them where other programs cannot write (Kept): a settings file that
	// differs was changed while the app was not running, and is judged
	// like any change made outside it. Nil takes the file as it is.
	InForce *Config
	// Kept, when set, is told the settings in force at start and whenever
	// they change, without the watcher's lock held, so that the app can
	// keep them for InForce at the next start.
	Kept   func(*Config)
	Logger *slog.Logger
}

// OutsideChange is a change of the settings file made outside Countersign:
// by hand, by device management, or by any program the person runs, such
// as an AI app with file tools.
type OutsideChange struct {
	// ID names a waiting change, for Confirm and for the person's answer;
	// it is 0 for a change applied at once and for a withdrawal.
	ID uint64
	// Changes are what the file changes, against the settings in force.
	// None means a waiting change was withdrawn: the file changed again,
	// back to the settings in force, or into one that can't be read.
	Changes []Change
	// Waiting is set when the change widens: the settings in force stay
	// until the person confirms it in the app.
	Waiting bool
	// Replaced is the id of the waiting change this one replaced or
	// withdrew, 0 for none.
	Replaced uint64
}

// ErrNoSuchChange is returned when the change the person answered is no
// longer the one waiting: the file changed again since it was shown.
var ErrNoSuchChange = errors.New("the settings file changed again since this change was shown")

// Watcher keeps the effective settings up to date while the app runs. It
// looks at the settings and policy files every Interval and recomputes the
// effective settings when either changes. A changed file is applied only
// once it reads the same on two looks in a row, so a file caught half-written
// is not applied; if it is still invalid then, the last good settings are
// kept (and the error reported), while an invalid policy fails closed.
//
// The settings file can be written by any program the person runs, so a
// change that did not come from the app's own Store is compared with the
// settings in force (Diff): one that only narrows applies at once; one that
// widens waits, with the settings in force kept, until the person confirms
// it (Confirm) or keeps the current settings. Either way OnOutsideChange
// hears of it. The admin policy (a file, the registry or managed
// preferences), which only an administrator can write, applies as it is.
type Watcher struct {
	settingsPath string
	policySrc    []PolicySource
	checks       Checks
	interval     time.Duration
	log          *slog.Logger
	updates      chan *Effective
	onOutside    func(OutsideChange)
	kept         func(*Config)

	// reportMu is held from a look at the files until what it found has
	// been reported, so that reports arrive in order. Lock order: reportMu,
	// then mu.
	reportMu sync.Mutex

	mu          sync.Mutex // guards the fields below; held while looking at the files
	settings    watched
	policy      watched
	user        *Config // last good settings
	settingsErr error
	pol         *Policy
	polErr      error
	current     *Effective
	// own is the hash of what the app's Store last wrote (Saved), until
	// the watcher has read it: that content is the person's own change.
	own    *[sha256.Size]byte
	lastID uint64
	// pending is the outside change waiting for the person, or nil.
	pending *pendingChange
	// reports are outside changes found, to hand to onOutside once mu is
	// released.
	reports []OutsideChange
	// keptUser is the settings in force last handed to kept.
	keptUser *Config
}

// pendingChange is a widening outside change held back.
type pendingChange struct {
	OutsideChange
	user *Config
}

// watched is what the watcher knows of one file.
type watched struct {
	applied fingerprint
	// seen is what the last look found, when it differed from applied.
	seen    fingerprint
	pending bool
}

// fingerprint identifies a file's state: content hash, mode, or why it
// could not be read; for the policy also the source it came from.
type fingerprint struct {
	exists bool
	src    string
	mode   fs.FileMode
	sum    [sha256.Size]byte
	err    string
}

type snapshot struct {
	fp   fingerprint
	b    []byte
	mode fs.FileMode
	err  error
	pol  policyRead // for the policy
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

// lookPolicy reads the policy sources in order.
func lookPolicy(sources []PolicySource) snapshot {
	r := readPolicy(sources)
	s := snapshot{pol: r}
	switch {
	case r.src == nil:
	case r.err != nil:
		s.fp = fingerprint{exists: true, src: r.src.Where, err: r.err.Error()}
	default:
		s.fp = fingerprint{exists: true, src: r.src.Where, sum: sha256.Sum256(r.b)}
	}
	return s
}

// NewWatcher reads both files once, so Current is ready at once.
func NewWatcher(o WatcherOptions) *Watcher {
	w := &Watcher{
		settingsPath: o.SettingsPath,
		policySrc:    AdminPolicySources(),
		checks:       o.Checks,
		interval:     o.Interval,
		log:          o.Logger,
		updates:      make(chan *Effective, 1),
		onOutside:    o.OnOutsideChange,
		kept:         o.Kept,
	}
	switch {
	case o.PolicyPath != "":
		w.policySrc = []PolicySource{FilePolicySource(o.PolicyPath)}
	case o.PolicySources != nil:
		w.policySrc = o.PolicySources
	}
	if w.interval <= 0 {
		w.interval = time.Second
	}
	if w.log == nil {
		w.log = slog.Default()
	}
	w.mu.Lock()
	w.user = Defaults()
	w.applyPolicy(lookPolicy(w.policySrc))
	if o.InForce != nil {
		// Reported at the first look, once whoever hears is ready.
		w.user = o.InForce.Clone()
		w.applySettings(look(w.settingsPath))
	} else {
		w.loadSettings(look(w.settingsPath))
	}
	w.recomputeLocked(false)
	w.mu.Unlock()
	w.keep()
	return w
}

// keep hands the settings in force to kept when they changed since it was
// last told. Called without mu held, under reportMu except at start.
func (w *Watcher) keep() {
	if w.kept == nil {
		return
	}
	w.mu.Lock()
	user := w.user
	if user == w.keptUser {
		w.mu.Unlock()
		return
	}
	w.keptUser = user
	w.mu.Unlock()
	w.kept(user.Clone())
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

// Reload looks at both files now and acts on any change at once, without
// waiting for it to settle; the app calls it after saving through a Store,
// whose writes are atomic. A change of the settings file that Saved did not
// announce is still an outside change.
func (w *Watcher) Reload() { w.poll(true) }

// Saved tells the watcher that the app's Store wrote b to the settings
// file, as the person's own change in the app, and applies it at once. Pass
// it as StoreOptions.Saved.
func (w *Watcher) Saved(b []byte) {
	sum := sha256.Sum256(b)
	w.mu.Lock()
	w.own = &sum
	w.mu.Unlock()
	w.poll(true)
	// Read now or overwritten already: either way the hash is spent, so
	// the same bytes written later by another program are judged as
	// theirs.
	w.mu.Lock()
	w.own = nil
	w.mu.Unlock()
}

// Pending returns the outside change waiting for the person, if any.
func (w *Watcher) Pending() (OutsideChange, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pending == nil {
		return OutsideChange{}, false
	}
	c := w.pending.OutsideChange
	c.Changes = slices.Clone(c.Changes)
	return c, true
}

// Confirm applies the waiting outside change id, which the person has seen
// and accepted, and returns its changes. If another change has taken its
// place, nothing is applied and the error is ErrNoSuchChange.
func (w *Watcher) Confirm(id uint64) ([]Change, error) {
	w.reportMu.Lock()
	defer w.reportMu.Unlock()
	w.mu.Lock()
	p := w.pending
	if p == nil || p.ID != id {
		w.mu.Unlock()
		return nil, ErrNoSuchChange
	}
	w.pending = nil
	w.user = p.user
	w.recomputeLocked(true)
	w.mu.Unlock()
	w.log.Info("settings change made outside Countersign confirmed", "changes", len(p.Changes))
	w.keep()
	return p.Changes, nil
}

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
	w.reportMu.Lock()
	defer w.reportMu.Unlock()
	w.mu.Lock()
	changed := false
	// The policy first: a settings change is judged under the policy that
	// will apply to it.
	if s, ok := w.policy.next(lookPolicy(w.policySrc), force); ok {
		w.applyPolicy(s)
		changed = true
	}
	if s, ok := w.settings.next(look(w.settingsPath), force); ok {
		if w.settingsGone(s) || w.applySettings(s) {
			changed = true
		}
	}
	if changed {
		w.recomputeLocked(true)
	}
	reports := w.reports
	w.reports = nil
	w.mu.Unlock()
	w.keep()
	if w.onOutside != nil {
		for _, r := range reports {
			w.onOutside(r)
		}
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

// loadSettings reads the settings file as the app starts: it is taken as
// it is, there being nothing in force yet to compare it with.
func (w *Watcher) loadSettings(s snapshot) {
	w.settings.applied = s.fp
	if c, ok := w.parseSettings(s); ok {
		w.user = c
	}
}

// parseSettings reads a look at the settings file; on failure it records
// the error (the last good settings stay) and reports false.
func (w *Watcher) parseSettings(s snapshot) (*Config, bool) {
	var c *Config
	switch {
	case errors.Is(s.err, fs.ErrNotExist):
		c, w.settingsErr = Defaults(), nil
	case s.err != nil:
		w.settingsErr = fmt.Errorf("reading settings %s: %w", w.settingsPath, s.err)
	default:
		var err error
		if c, err = Parse(s.b); err != nil {
			w.settingsErr = fmt.Errorf("settings %s: %w", w.settingsPath, err)
		} else {
			w.settingsErr = nil
		}
	}
	if w.settingsErr != nil {
		w.log.Warn("settings file is invalid: keeping the last good settings", "err", w.settingsErr)
		return nil, false
	}
	return c, true
}

// settingsGone handles a settings file that disappeared while the app
// runs (a program replacing it, someone tidying up): dropping every server
// for that would end every session, so the settings in force stay, as for
// a broken file, until it is back or the person saves. It reports whether
// it handled s.
func (w *Watcher) settingsGone(s snapshot) bool {
	if !errors.Is(s.err, fs.ErrNotExist) {
		return false
	}
	w.settings.applied = s.fp
	w.settingsErr = fmt.Errorf("settings %s: the file is missing; the settings in force stay until it is back or you save", w.settingsPath)
	w.log.Warn("settings file is missing: keeping the settings in force", "path", w.settingsPath)
	w.withdrawLocked()
	return true
}

// applySettings acts on a changed settings file: the app's own save
// applies; an outside change applies if it only narrows, and otherwise
// waits for the person. A file that can't be read keeps the settings in
// force and withdraws a waiting change. It reports whether the effective
// settings are to be recomputed and delivered: not for a change that only
// waits.
func (w *Watcher) applySettings(s snapshot) bool {
	w.settings.applied = s.fp
	hadErr := w.settingsErr != nil
	c, ok := w.parseSettings(s)
	if !ok {
		w.withdrawLocked()
		return true
	}
	if w.own != nil && s.fp.sum == *w.own {
		w.own = nil
		w.user = c
		w.clearPendingLocked()
		return true
	}
	changes := Diff(w.resolveLocked(w.user), w.resolveLocked(c))
	switch {
	case len(changes) == 0:
		// The same settings (written differently, or back as they are).
		w.user = c
		w.withdrawLocked()
	case !Widens(changes):
		w.user = c
		replaced := w.clearPendingLocked()
		w.reports = append(w.reports, OutsideChange{Changes: changes, Replaced: replaced})
		w.log.Warn("settings file changed outside Countersign: applied, as it only narrows", "changes", len(changes))
	default:
		w.lastID++
		p := &pendingChange{OutsideChange: OutsideChange{ID: w.lastID, Changes: changes, Waiting: true}, user: c}
		if w.pending != nil {
			p.Replaced = w.pending.ID
		}
		w.pending = p
		w.reports = append(w.reports, p.OutsideChange)
		w.log.Warn("settings file changed outside Countersign: waiting for the person to confirm, as it widens", "changes", len(changes))
		// The settings in force are as they were; only the error of an
		// unreadable file before, if any, is gone.
		return hadErr
	}
	return true
}

// clearPendingLocked drops the waiting change and returns its id (0 for
// none).
func (w *Watcher) clearPendingLocked() uint64 {
	if w.pending == nil {
		return 0
	}
	id := w.pending.ID
	w.pending = nil
	return id
}

// withdrawLocked drops the waiting change, if any, and reports it.
func (w *Watcher) withdrawLocked() {
	if id := w.clearPendingLocked(); id != 0 {
		w.reports = append(w.reports, OutsideChange{Replaced: id})
	}
}

// resolveLocked computes effective settings of user under the policy now
// in force.
func (w *Watcher) resolveLocked(user *Config) *Effective {
	if w.polErr != nil {
		return FailClosed(user, w.polErr)
	}
	return Resolve(user, w.pol, w.checks)
}

func (w *Watcher) applyPolicy(s snapshot) {
	w.policy.applied = s.fp
	w.pol, w.polErr = s.pol.policy()
	if w.polErr != nil {
		w.log.Error("organisation policy is unusable: no server can connect", "err", w.polErr)
	}
}

// recomputeLocked makes the effective settings and, if publish, delivers them.
func (w *Watcher) recomputeLocked(publish bool) {
	e := w.resolveLocked(w.user)
	if w.polErr == nil && e.Err != nil {
		w.log.Error("organisation policy is unusable: no server can connect", "err", e.Err)
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
