package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for the app: with
// BRIDGE_TEST_APP set it plays the app's part in a start test and exits.
func TestMain(m *testing.M) {
	switch os.Getenv("BRIDGE_TEST_APP") {
	case "":
		os.Exit(m.Run())
	case "exit":
		code, _ := strconv.Atoi(os.Getenv("BRIDGE_TEST_CODE"))
		os.Exit(code)
	case "report":
		// Where did the bridge put us: our session and our stdio.
		sid := session("self")
		var fds []string
		for fd := range 3 {
			l, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
			fds = append(fds, l)
		}
		os.WriteFile(os.Getenv("BRIDGE_TEST_OUT"), []byte(fmt.Sprintf("%s %s %s", sid, strings.Join(fds, " "), strings.Join(os.Args[1:], " "))), 0o600)
		os.Exit(0)
	}
}

// session is the session id of a process, from /proc/<pid>/stat.
func session(pid string) string {
	b, _ := os.ReadFile("/proc/" + pid + "/stat")
	_, after, _ := strings.Cut(string(b), ") ")
	if f := strings.Fields(after); len(f) > 3 {
		return f[3] // state, ppid, pgrp, session
	}
	return ""
}

func executable(t *testing.T, path string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLocateFindsTheApp(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the executable bit is a Unix notion")
	}
	dir := t.TempDir()
	bridgeDir, installDir, pathDir := filepath.Join(dir, "bin"), filepath.Join(dir, "install"), filepath.Join(dir, "path")
	self := executable(t, filepath.Join(bridgeDir, "countersign-bridge"))
	onPath := func(name string) (string, error) {
		p := filepath.Join(pathDir, name)
		if isExecutable(p) {
			return p, nil
		}
		return "", exec.ErrNotFound
	}
	none := func(string) (string, error) { return "", exec.ErrNotFound }

	// Nothing installed anywhere.
	if _, err := locate([]string{self}, "countersign", []string{installDir}, onPath); !errors.Is(err, ErrAppNotFound) {
		t.Fatalf("nothing installed: err = %v, want ErrAppNotFound", err)
	}
	// A folder or a file that cannot run is not the app.
	os.MkdirAll(filepath.Join(installDir, "countersign"), 0o755)
	if err := os.MkdirAll(pathDir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(pathDir, "countersign"), []byte("data"), 0o644)
	if p, err := locate([]string{self}, "countersign", []string{installDir}, onPath); err == nil {
		t.Fatalf("found %s, which is not an executable", p)
	}

	// On PATH.
	os.Chmod(filepath.Join(pathDir, "countersign"), 0o755)
	if p, _ := locate([]string{self}, "countersign", nil, onPath); p != filepath.Join(pathDir, "countersign") {
		t.Errorf("on PATH: got %q", p)
	}
	// The recorded install folder comes before PATH.
	os.Remove(filepath.Join(installDir, "countersign"))
	inst := executable(t, filepath.Join(installDir, "countersign"))
	if p, _ := locate([]string{self}, "countersign", []string{"", installDir}, onPath); p != inst {
		t.Errorf("install folder: got %q, want %q", p, inst)
	}
	// Beside the bridge comes first.
	beside := executable(t, filepath.Join(bridgeDir, "countersign"))
	if p, _ := locate([]string{self}, "countersign", []string{installDir}, onPath); p != beside {
		t.Errorf("beside the bridge: got %q, want %q", p, beside)
	}
	// A bridge reached through a link finds the app beside the real file.
	link := filepath.Join(dir, "links", "countersign-bridge")
	os.MkdirAll(filepath.Dir(link), 0o755)
	if err := os.Symlink(self, link); err != nil {
		t.Fatal(err)
	}
	if p, _ := locate([]string{link, self}, "countersign", nil, none); p != beside {
		t.Errorf("through a link: got %q, want %q", p, beside)
	}
}

// fakeApp is a Starter whose port answers once the app has been started
// and then polled upTo times.
func fakeStarter(t *testing.T, running bool, upAfter int, app []string) (*Starter, *atomic.Int32) {
	var started, polls atomic.Int32
	s := NewStarter(40000, "")
	s.Log = slog.New(slog.DiscardHandler)
	s.lockFile = filepath.Join(t.TempDir(), "start.lock")
	s.poll = 10 * time.Millisecond
	s.answers = func(int) bool {
		if running {
			return true
		}
		return started.Load() > 0 && polls.Add(1) > int32(upAfter)
	}
	s.command = func(string) (string, []string, error) {
		if app == nil {
			return "", nil, ErrAppNotFound
		}
		return app[0], app[1:], nil
	}
	s.start = func(path string, args []string) (*exec.Cmd, error) {
		started.Add(1)
		cmd := exec.Command(path, args...)
		cmd.Env = append(os.Environ(), "BRIDGE_TEST_APP=exit", "BRIDGE_TEST_CODE="+os.Getenv("WANT_CODE"))
		return cmd, cmd.Start()
	}
	return s, &started
}

func TestStarterLeavesARunningAppAlone(t *testing.T) {
	s, started := fakeStarter(t, true, 0, []string{os.Args[0]})
	if err := s.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	if started.Load() != 0 {
		t.Fatal("started a second app although one answers")
	}
}

func TestStarterSaysWhenNoAppIsInstalled(t *testing.T) {
	s, _ := fakeStarter(t, false, 0, nil)
	err := s.Ensure(context.Background())
	if !errors.Is(err, ErrAppNotFound) {
		t.Fatalf("err = %v, want ErrAppNotFound", err)
	}
}

func TestStarterStartsTheAppAndWaitsForIt(t *testing.T) {
	// The app process exits 0 (as a second copy or macOS's open does)
	// before the port answers: keep waiting.
	s, started := fakeStarter(t, false, 50, []string{os.Args[0]})
	if err := s.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	if started.Load() != 1 {
		t.Fatalf("started %d times", started.Load())
	}
}

// TestConcurrentBridgesStartTheAppOnce: an AI app starts all its servers
// at once; one bridge starts the app and the others wait for it.
func TestConcurrentBridgesStartTheAppOnce(t *testing.T) {
	lock := filepath.Join(t.TempDir(), "start.lock")
	var up atomic.Bool
	var starts atomic.Int32
	errs := make(chan error, 5)
	for range 5 {
		s := NewStarter(40000, "")
		s.Log = slog.New(slog.DiscardHandler)
		s.lockFile = lock
		s.poll = 10 * time.Millisecond
		s.answers = func(int) bool { return up.Load() }
		s.command = func(string) (string, []string, error) { return os.Args[0], nil, nil }
		s.start = func(path string, args []string) (*exec.Cmd, error) {
			starts.Add(1)
			cmd := exec.Command(path, args...)
			cmd.Env = append(os.Environ(), "BRIDGE_TEST_APP=exit")
			time.AfterFunc(300*time.Millisecond, func() { up.Store(true) })
			return cmd, cmd.Start()
		}
		go func() { errs <- s.Ensure(context.Background()) }()
	}
	for range 5 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n := starts.Load(); n != 1 {
		t.Errorf("the app was started %d times", n)
	}
}

func TestStarterGivesUpWhenTheAppFails(t *testing.T) {
	t.Setenv("WANT_CODE", "3")
	s, _ := fakeStarter(t, false, 1<<30, []string{os.Args[0]})
	err := s.Ensure(context.Background())
	if !errors.Is(err, ErrAppDidNotStart) || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("err = %v, want ErrAppDidNotStart with the exit status", err)
	}
}

func TestStarterGivesUpAfterItsTimeout(t *testing.T) {
	s, _ := fakeStarter(t, false, 1<<30, []string{os.Args[0]})
	s.Timeout = 200 * time.Millisecond
	err := s.Ensure(context.Background())
	if !errors.Is(err, ErrAppDidNotStart) {
		t.Fatalf("err = %v, want ErrAppDidNotStart", err)
	}
}

// TestStartDetached: the app gets a session of its own and none of the
// bridge's stdio (its stdout is the AI app's MCP channel), and the
// settings file the bridge was given.
func TestStartDetached(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	out := filepath.Join(t.TempDir(), "report")
	t.Setenv("BRIDGE_TEST_APP", "report")
	t.Setenv("BRIDGE_TEST_OUT", out)
	cmd, err := startDetached(os.Args[0], appArgs("/some/settings.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	mine := session("self")
	if len(f) != 6 {
		t.Fatalf("report %q", b)
	}
	if f[0] == mine || f[0] != strconv.Itoa(cmd.Process.Pid) {
		t.Errorf("the app's session is %s (bridge's %s, app's pid %d): want a session of its own", f[0], mine, cmd.Process.Pid)
	}
	for i, l := range f[1:4] {
		if l != os.DevNull {
			t.Errorf("the app's fd %d is %s, want %s", i, l, os.DevNull)
		}
	}
	if got := strings.Join(f[4:], " "); got != "-config /some/settings.json" {
		t.Errorf("the app's arguments: %q", got)
	}
}
