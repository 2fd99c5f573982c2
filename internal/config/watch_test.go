package config

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

const (
	settingsA = `{"version":2,"servers":[{"id":"gh","kind":"github","allowlist":{"github-repository":["a/*"]}}]}`
	settingsB = `{"version":2,"servers":[{"id":"gh","kind":"github","allowlist":{"github-repository":["b/*"]}},{"id":"local","transport":"stdio","command":"node"}]}`
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
	dir := t.TempDir()
	e := &watchEnv{t: t, settings: filepath.Join(dir, "settings.json"), policy: filepath.Join(dir, "policy.json"), interval: time.Second}
	if settings != "" {
		e.write(e.settings, settings)
	}
	if policy != "" {
		e.write(e.policy, policy)
	}
	e.w = NewWatcher(WatcherOptions{SettingsPath: e.settings, PolicyPath: e.policy, Interval: e.interval, Logger: quiet})
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
		env := startWatcher(t, settingsA, "")
		env.write(env.settings, settingsB)
		env.tick()
		if u := env.update(); u != nil {
			t.Fatal("applied a change seen only once")
		}
		env.tick()
		u := env.update()
		if u == nil {
			t.Fatal("no update after the change settled")
		}
		if got := allowlistOf(u, "gh"); got != "b/*" || len(u.Servers) != 2 {
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
		env := startWatcher(t, settingsA, `{"version":1,"allowCustomServers":true}`)
		// A writer that does not replace files atomically, caught half way.
		env.write(env.settings, settingsB[:40])
		env.write(env.policy, `{"version":1,"allowCustom`)
		env.tick()
		env.write(env.settings, settingsB)
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
		if allowlistOf(u, "gh") != "b/*" || local.Connect {
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
		env.write(env.settings, settingsB)
		env.tick()
		env.tick()
		u = env.update()
		if u == nil || u.SettingsErr != nil || allowlistOf(u, "gh") != "b/*" {
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
		store := NewStore(env.settings, StoreOptions{Logger: quiet, Guard: func(old, next *Config) error { return env.w.Current().CheckEdit(old, next) }})
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
		env := startWatcher(t, settingsA, "")
		env.write(env.settings, settingsB)
		env.w.Reload()
		env.write(env.settings, settingsA)
		env.w.Reload()
		u := env.update()
		if u == nil || allowlistOf(u, "gh") != "a/*" || len(u.Servers) != 1 {
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
		env.write(env.settings, settingsA)
		env.tick()
		env.tick()
		if u := env.update(); u == nil || len(u.Servers) != 1 {
			t.Fatalf("new settings file not picked up: %+v", u)
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
