package config

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	settingsA = `{"version":2,"servers":[{"id":"gh","kind":"github","allowlist":{"github-repository":["a/*"]}}]}`
	settingsB = `{"version":2,"servers":[{"id":"gh","kind":"github","allowlist":{"github-repository":["b/*"]}},{"id":"local","transport":"stdio","command":"node"}]}`
	// settingsBNarrow is settingsB with the allowlist entry removed: only
	// narrower, so it applies without the person confirming it.
	settingsBNarrow = `{"version":2,"servers":[{"id":"gh","kind":"github"},{"id":"local","transport":"stdio","command":"node"}]}`
)

type watchEnv struct {
	t                *testing.T
	settings, policy string
	w                *Watcher
	cancel           context.CancelFunc
	done             chan struct{}
	interval         time.Duration
}

// startWatcher runs a Watcher inside the synctest bubble.
func startWatcher(t *testing.T, settings, policy string) *watchEnv {
	t.Helper()
	return startWatcherReporting(t, settings, policy, nil)
}

// startWatcherReporting is startWatcher with outside changes reported to
// onOutside.
func startWatcherReporting(t *testing.T, settings, policy string, onOutside func(OutsideChange)) *watchEnv {
	t.Helper()
	dir := t.TempDir()
	e := &watchEnv{t: t, settings: filepath.Join(dir, "settings.json"), policy: filepath.Join(dir, "policy.json"), interval: time.Second}
	if settings != "" {
		e.write(e.settings, settings)
	}
	if policy != "" {
		e.write(e.policy, policy)
	}
	e.w = NewWatcher(WatcherOptions{SettingsPath: e.settings, PolicyPath: e.policy, Interval: e.interval, Logger: quiet, OnOutsideChange: onOutside})
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan struct{})
	go func() { e.w.Run(ctx); close(e.done) }()
	t.Cleanup(e.stop)
	return e
}

func (e *watchEnv) stop() {
	e.cancel()
	<-e.done
}

func (e *watchEnv) write(path, s string) {
	e.t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// tick lets one polling interval pass and the watcher act on it.
func (e *watchEnv) tick() {
	time.Sleep(e.interval)
	synctest.Wait()
}

// update returns the pending delivery, or nil.
func (e *watchEnv) update() *Effective {
	select {
	case eff := <-e.w.Updates():
		return eff
	default:
		return nil
	}
}

func allowlistOf(e *Effective, id string) string {
	s, ok := e.Server(id)
	if !ok {
		return "<none>"
	}
	return strings.Join(s.Patterns()["github-repository"], ",")
}

func TestWatcherStartsWithBothFiles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := startWatcher(t, settingsA, `{"version":1,"servers":{"github":{"allowlist":{"github-repository":["DEFRA/*"]}}}}`)
		cur := env.w.Current()
		if cur.Err != nil || cur.SettingsErr != nil || cur.Policy == nil {
			t.Fatalf("Current = %+v", cur)
		}
		if got := allowlistOf(cur, "gh"); got != "DEFRA/*,a/*" {
			t.Fatalf("allowlist = %s", got)
		}
		if env.update() != nil {
			t.Fatal("the initial state was also delivered as an update")
		}
	})
}

func TestWatcherPicksUpASettledChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := startWatcher(t, settingsB, "")
		env.write(env.settings, settingsBNarrow)
		env.tick()
		if u := env.update(); u != nil {
			t.Fatal("applied a change seen only once")
		}
		env.tick()
		u := env.update()
		if u == nil {
			t.Fatal("no update after the change settled")
		}
		if got := allowlistOf(u, "gh"); got != "" || len(u.Servers) != 2 {
			t.Fatalf("update = %s, %d servers", got, len(u.Servers))
		}
		if env.w.Current() != u {
			t.Fatal("Current is not the delivered update")
		}
		env.tick()
		if env.update() != nil {
			t.Fatal("an unchanged file was delivered again")
		}
	})
}

func TestWatcherIgnoresHalfWrittenFiles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := startWatcher(t, settingsB, `{"version":1,"allowCustomServers":true}`)
		// A writer that does not replace files atomically, caught half way.
		env.write(env.settings, settingsBNarrow[:40])
		env.write(env.policy, `{"version":1,"allowCustom`)
		env.tick()
		env.write(env.settings, settingsBNarrow)
		env.write(env.policy, `{"version":1,"allowCustomServers":false}`)
		env.tick()
		if u := env.update(); u != nil {
			t.Fatalf("applied a file that was still changing: %+v", u)
		}
		env.tick()
		u := env.update()
		if u == nil {
			t.Fatal("no update once the files settled")
		}
		if u.Err != nil || u.SettingsErr != nil {
			t.Fatalf("a half-written file was applied: %v / %v", u.Err, u.SettingsErr)
		}
		local, _ := u.Server("local")
		if allowlistOf(u, "gh") != "" || local.Connect {
			t.Fatalf("wrong settings applied: %+v", u.Servers)
		}
	})
}

func TestWatcherKeepsLastGoodSettings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := startWatcher(t, settingsA, "")
		env.write(env.settings, "{\"version\":2,\n\"servers\":[{\"id\":\"gh\",\"kind\":\"github\",\"alowlist\":[]}]}")
		env.tick()
		env.tick()
		u := env.update()
		if u == nil || u.SettingsErr == nil {
			t.Fatalf("an invalid settings file was not reported: %+v", u)
		}
		if want := "settings " + env.settings + ": line 2: servers[0].alowlist: unknown field"; !strings.Contains(u.SettingsErr.Error(), want) {
			t.Fatalf("SettingsErr = %v, want %q", u.SettingsErr, want)
		}
		if got := allowlistOf(u, "gh"); got != "a/*" {
			t.Fatalf("last good settings not kept: %s", got)
		}
		if s, _ := u.Server("gh"); !s.Connect || u.Err != nil {
			t.Fatal("a bad settings file stopped the last good settings from connecting")
		}
		env.write(env.settings, `{"version":2,"servers":[{"id":"gh","kind":"github"}]}`)
		env.tick()
		env.tick()
		u = env.update()
		if u == nil || u.SettingsErr != nil || allowlistOf(u, "gh") != "" {
			t.Fatalf("fixed settings not applied: %+v", u)
		}
	})
}

func TestWatcherFailsClosedOnABrokenPolicy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := startWatcher(t, settingsA, `{"version":1}`)
		if s, _ := env.w.Current().Server("gh"); !s.Connect {
			t.Fatal("gh should connect under the first policy")
		}
		env.write(env.policy, "{\"version\":1,\n\"approvedServers\":\"github\"}")
		env.tick()
		env.tick()
		u := env.update()
		if u == nil || u.Err == nil {
			t.Fatalf("broken policy not applied as an error: %+v", u)
		}
		if want := "the organisation policy at " + env.policy + " is invalid: line 2: approvedServers: want a list, got text"; u.Err.Error() != want {
			t.Fatalf("Err = %v, want %q", u.Err, want)
		}
		if s, _ := u.Server("gh"); s.Connect {
			t.Fatal("a server may connect under a broken policy")
		}
		// The policy is removed: no narrowing.
		os.Remove(env.policy)
		env.tick()
		env.tick()
		u = env.update()
		if u == nil || u.Err != nil || u.Policy != nil {
			t.Fatalf("removed policy not applied: %+v", u)
		}
		if s, _ := u.Server("gh"); !s.Connect {
			t.Fatal("gh should connect without a policy")
		}
	})
}

func TestWatcherFailsClosedOnAPolicyOthersCanWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := startWatcher(t, settingsA, `{"version":1}`)
		if err := os.Chmod(env.policy, 0o666); err != nil {
			t.Fatal(err)
		}
		env.tick()
		env.tick()
		u := env.update()
		if u == nil || u.Err == nil || !strings.Contains(u.Err.Error(), "other users can change it") {
			t.Fatalf("a mode change was not noticed: %+v", u)
		}
	})
}

func TestWatcherReloadAppliesAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := startWatcher(t, settingsA, "")
		store := NewStore(env.settings, StoreOptions{Logger: quiet, Saved: env.w.Saved, Guard: func(old, next *Config) error { return env.w.Current().CheckEdit(old, next) }})
		if err := store.Update(func(c *Config) error {
			c.Servers[0].Allowlist = map[string][]string{"github-repository": {"c/*"}}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		env.w.Reload()
		if got := allowlistOf(env.w.Current(), "gh"); got != "c/*" {
			t.Fatalf("Reload did not apply the saved settings: %s", got)
		}
		if u := env.update(); u == nil || allowlistOf(u, "gh") != "c/*" {
			t.Fatalf("Reload did not deliver an update: %+v", u)
		}
	})
}

func TestWatcherDeliversOnlyTheLatest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := startWatcher(t, settingsB, "")
		env.write(env.settings, settingsBNarrow)
		env.w.Reload()
		env.write(env.settings, `{"version":2,"servers":[{"id":"gh","kind":"github"}]}`)
		env.w.Reload()
		u := env.update()
		if u == nil || allowlistOf(u, "gh") != "" || len(u.Servers) != 1 {
			t.Fatalf("update = %+v, want the latest settings", u)
		}
		if env.update() != nil {
			t.Fatal("a stale update was still queued")
		}
	})
}

func TestWatcherStartsWithoutFiles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := startWatcher(t, "", "")
		cur := env.w.Current()
		if cur.Err != nil || cur.SettingsErr != nil || len(cur.Servers) != 0 || cur.Settings.Port != DefaultPort {
			t.Fatalf("Current = %+v", cur)
		}
		// A first settings file adds a server: it waits for the person.
		env.write(env.settings, settingsA)
		env.tick()
		env.tick()
		if c, ok := env.w.Pending(); !ok || len(env.w.Current().Servers) != 0 {
			t.Fatalf("new settings file applied without the person: %+v", env.w.Current())
		} else if _, err := env.w.Confirm(c.ID); err != nil {
			t.Fatal(err)
		}
		if u := env.update(); u == nil || len(u.Servers) != 1 {
			t.Fatalf("new settings file not picked up once confirmed: %+v", u)
		}
	})
}

func TestWatcherRunStopsWithItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := startWatcher(t, settingsA, "")
		env.cancel()
		synctest.Wait()
		select {
		case <-env.done:
		default:
			t.Fatal("Run still running after its context ended")
		}
	})
}

const (
	hiding   = `{"version":2,"servers":[{"id":"gh","name":"GitHub","kind":"github","allowlist":{"github-repository":["DEFRA/ffc-pay"]},"hiddenTools":["delete_repository"]}]}`
	unhiding = `{"version":2,"servers":[{"id":"gh","name":"GitHub","kind":"github","allowlist":{"github-repository":["DEFRA/ffc-pay"]}}]}`
	wider    = `{"version":2,"servers":[{"id":"gh","name":"GitHub","kind":"github","allowlist":{"github-repository":["DEFRA/*"]},"hiddenTools":["delete_repository"]}]}`
	narrower = `{"version":2,"servers":[{"id":"gh","name":"GitHub","kind":"github","hiddenTools":["delete_repository","create_*"]}]}`
)

// reports collects what a watcher reports, in order.
type reports struct {
	mu  sync.Mutex
	got []OutsideChange
}

func (r *reports) add(c OutsideChange) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, c)
}

func (r *reports) take() []OutsideChange {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.got
	r.got = nil
	return out
}

func hiddenOf(e *Effective, id string) string {
	s, _ := e.Server(id)
	return strings.Join(s.HiddenToolNames(), ",")
}

// TestWatcherHoldsAWideningOutsideChange is issue 11 finding 7: a program
// rewrote settings.json to show a hidden tool again, and it applied within
// two seconds without anyone being asked. Now the settings in force stay
// until the person confirms the change.
func TestWatcherHoldsAWideningOutsideChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rep reports
		env := startWatcherReporting(t, hiding, "", rep.add)
		env.write(env.settings, unhiding)
		env.tick()
		env.tick()
		env.tick()
		if got := hiddenOf(env.w.Current(), "gh"); got != "delete_repository" {
			t.Fatalf("hidden tools in force = %q: the outside change applied without the person", got)
		}
		if u := env.update(); u != nil {
			t.Fatal("new settings were delivered for a change that only waits")
		}
		want := []Change{{Server: "gh", Text: "GitHub: delete_repository is no longer hidden", Widens: true}}
		got := rep.take()
		if len(got) != 1 || !got[0].Waiting || got[0].ID == 0 || !cmp.Equal(got[0].Changes, want) {
			t.Fatalf("reports = %+v, want one waiting change %+v", got, want)
		}
		p, ok := env.w.Pending()
		if !ok || p.ID != got[0].ID || !cmp.Equal(p.Changes, want) {
			t.Fatalf("Pending = %+v, %v", p, ok)
		}
		if _, err := env.w.Confirm(p.ID + 1); !errors.Is(err, ErrNoSuchChange) {
			t.Fatalf("Confirm of another id = %v, want ErrNoSuchChange", err)
		}
		changes, err := env.w.Confirm(p.ID)
		if err != nil || !cmp.Equal(changes, want) {
			t.Fatalf("Confirm = %+v, %v", changes, err)
		}
		if got := hiddenOf(env.w.Current(), "gh"); got != "" {
			t.Fatalf("hidden tools after confirming = %q", got)
		}
		if u := env.update(); u == nil || hiddenOf(u, "gh") != "" {
			t.Fatalf("confirming delivered %+v, want the confirmed settings", u)
		}
		if _, ok := env.w.Pending(); ok {
			t.Fatal("a change is still waiting after it was confirmed")
		}
		if _, err := env.w.Confirm(p.ID); !errors.Is(err, ErrNoSuchChange) {
			t.Fatalf("a second Confirm = %v, want ErrNoSuchChange", err)
		}
		env.tick()
		env.tick()
		if got := rep.take(); len(got) != 0 {
			t.Fatalf("the confirmed file was reported again: %+v", got)
		}
	})
}

func TestWatcherAppliesANarrowingOutsideChangeAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rep reports
		env := startWatcherReporting(t, hiding, "", rep.add)
		env.write(env.settings, narrower)
		env.tick()
		env.tick()
		cur := env.w.Current()
		if hiddenOf(cur, "gh") != "delete_repository,create_*" || allowlistOf(cur, "gh") != "" {
			t.Fatalf("narrowing change not applied: %+v", cur.Servers)
		}
		want := []Change{
			{Server: "gh", Text: "GitHub: allowlist removed DEFRA/ffc-pay"},
			{Server: "gh", Text: "GitHub: create_* is now hidden"},
		}
		got := rep.take()
		if len(got) != 1 || got[0].Waiting || got[0].ID != 0 || !cmp.Equal(got[0].Changes, want) {
			t.Fatalf("reports = %+v, want one applied change %+v", got, want)
		}
		if _, ok := env.w.Pending(); ok {
			t.Fatal("a narrowing change waits")
		}
	})
}

func TestWatcherASecondOutsideEditReplacesTheWaitingOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rep reports
		env := startWatcherReporting(t, hiding, "", rep.add)
		env.write(env.settings, unhiding)
		env.tick()
		env.tick()
		first, _ := env.w.Pending()
		env.write(env.settings, wider)
		env.tick()
		env.tick()
		second, ok := env.w.Pending()
		if !ok || second.ID == first.ID || second.Replaced != first.ID {
			t.Fatalf("Pending = %+v, want a new change replacing %d", second, first.ID)
		}
		if want := []string{"GitHub: allowlist added DEFRA/*", "GitHub: allowlist removed DEFRA/ffc-pay"}; !slices.Equal(Texts(second.Changes), want) {
			t.Fatalf("changes = %q, want %q (against the settings in force)", Texts(second.Changes), want)
		}
		if _, err := env.w.Confirm(first.ID); !errors.Is(err, ErrNoSuchChange) {
			t.Fatalf("confirming the replaced change = %v", err)
		}
		if hiddenOf(env.w.Current(), "gh") != "delete_repository" || allowlistOf(env.w.Current(), "gh") != "DEFRA/ffc-pay" {
			t.Fatal("the settings in force changed")
		}
		// A half-written or invalid file withdraws the waiting change and
		// keeps the settings in force.
		rep.take()
		env.write(env.settings, wider[:30])
		env.tick()
		env.tick()
		if _, ok := env.w.Pending(); ok {
			t.Fatal("a change still waits after the file became unreadable")
		}
		if got := rep.take(); len(got) != 1 || got[0].Replaced != second.ID || len(got[0].Changes) != 0 {
			t.Fatalf("reports = %+v, want the withdrawal of %d", got, second.ID)
		}
		if cur := env.w.Current(); cur.SettingsErr == nil || hiddenOf(cur, "gh") != "delete_repository" {
			t.Fatalf("an invalid file did not keep the settings in force: %+v", cur)
		}
	})
}

// TestWatcherTakesTheStoresOwnSaveAsThePersons: a save from the settings
// window applies at once, even when it widens, and is not reported as an
// outside change; keeping the current settings (Store.Replace) clears a
// waiting change.
func TestWatcherTakesTheStoresOwnSaveAsThePersons(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rep reports
		env := startWatcherReporting(t, hiding, "", rep.add)
		store := NewStore(env.settings, StoreOptions{Logger: quiet, Saved: env.w.Saved})
		if err := store.Update(func(c *Config) error {
			c.Servers[0].HiddenTools = nil
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if got := hiddenOf(env.w.Current(), "gh"); got != "" {
			t.Fatalf("the person's own save did not apply: hidden %q", got)
		}
		env.tick()
		env.tick()
		if got := rep.take(); len(got) != 0 {
			t.Fatalf("the person's own save was reported as an outside change: %+v", got)
		}

		env.write(env.settings, wider)
		env.tick()
		env.tick()
		p, ok := env.w.Pending()
		if !ok {
			t.Fatal("no change waiting")
		}
		rep.take()
		if err := store.Replace(env.w.Current().Settings); err != nil {
			t.Fatal(err)
		}
		if _, ok := env.w.Pending(); ok {
			t.Fatal("keeping the current settings left the change waiting")
		}
		if _, err := env.w.Confirm(p.ID); !errors.Is(err, ErrNoSuchChange) {
			t.Fatalf("Confirm after keeping = %v", err)
		}
		onDisk, err := Load(env.settings)
		if err != nil || len(onDisk.Servers) != 1 || len(onDisk.Servers[0].HiddenTools) != 0 || !slices.Equal(onDisk.Servers[0].Allowlist[repo], []string{"DEFRA/ffc-pay"}) {
			t.Fatalf("file after keeping = %+v, %v", onDisk, err)
		}
		env.tick()
		env.tick()
		if got := rep.take(); len(got) != 0 {
			t.Fatalf("reports after keeping = %+v", got)
		}
	})
}

// TestWatcherJudgesAFileChangedWhileTheAppWasNotRunning: with the settings
// last in force kept outside the file (InForce), a file widened while the
// app was not running waits for the person from the start; one narrowed
// applies. Kept hears the settings in force at start and after a change.
func TestWatcherJudgesAFileChangedWhileTheAppWasNotRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "settings.json")
		os.WriteFile(path, []byte(unhiding), 0o600)
		var rep reports
		var keptMu sync.Mutex
		var kept []string
		w := NewWatcher(WatcherOptions{SettingsPath: path, PolicyPath: filepath.Join(dir, "none.json"), Logger: quiet,
			InForce: mustParse(t, hiding), OnOutsideChange: rep.add,
			Kept: func(c *Config) {
				keptMu.Lock()
				defer keptMu.Unlock()
				kept = append(kept, strings.Join(c.Servers[0].HiddenTools, ","))
			}})
		if got := hiddenOf(w.Current(), "gh"); got != "delete_repository" {
			t.Fatalf("hidden tools in force at start = %q", got)
		}
		p, ok := w.Pending()
		if !ok || !slices.Equal(Texts(p.Changes), []string{"GitHub: delete_repository is no longer hidden"}) {
			t.Fatalf("Pending = %+v, %v", p, ok)
		}
		w.Reload() // the first look hands over what start found
		if got := rep.take(); len(got) != 1 || got[0].ID != p.ID || !got[0].Waiting {
			t.Fatalf("reports = %+v", got)
		}
		if _, err := w.Confirm(p.ID); err != nil {
			t.Fatal(err)
		}
		keptMu.Lock()
		defer keptMu.Unlock()
		if !slices.Equal(kept, []string{"delete_repository", ""}) {
			t.Fatalf("kept = %q, want the settings in force at start, then the confirmed ones", kept)
		}
	})
}

func TestWatcherAppliesANarrowerFileAtStart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "settings.json")
	os.WriteFile(path, []byte(narrower), 0o600)
	var rep reports
	w := NewWatcher(WatcherOptions{SettingsPath: path, PolicyPath: filepath.Join(dir, "none.json"), Logger: quiet,
		InForce: mustParse(t, hiding), OnOutsideChange: rep.add})
	if got := hiddenOf(w.Current(), "gh"); got != "delete_repository,create_*" {
		t.Fatalf("hidden tools at start = %q", got)
	}
	if _, ok := w.Pending(); ok {
		t.Fatal("a narrower file waits")
	}
	w.Reload()
	if got := rep.take(); len(got) != 1 || got[0].Waiting || len(got[0].Changes) != 2 {
		t.Fatalf("reports = %+v", got)
	}
}

// TestASettingsFileGoneForAMomentKeepsTheSettings is issue 16's finding: a
// settings file deleted while the app runs (a program replacing it) used to
// drop every server and end every session until it came back. The
// settings in force stay, with an error saying why, and the file's return
// applies as before.
func TestASettingsFileGoneForAMomentKeepsTheSettings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := startWatcher(t, settingsA, "")
		os.Remove(env.settings)
		env.tick()
		env.tick()
		u := env.update()
		if u == nil || u.SettingsErr == nil || !strings.Contains(u.SettingsErr.Error(), "the file is missing") {
			t.Fatalf("a missing file was not reported: %+v", u)
		}
		if _, ok := u.Server("gh"); !ok {
			t.Fatal("the servers went with the file")
		}
		env.write(env.settings, settingsA)
		env.tick()
		env.tick()
		u = env.update()
		if u == nil || u.SettingsErr != nil {
			t.Fatalf("the file's return did not clear the error: %+v", u)
		}
		if _, ok := u.Server("gh"); !ok {
			t.Fatal("gh is gone after the file came back")
		}
	})
}
