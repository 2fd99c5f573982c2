package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"time"
)

// DefaultStartTimeout is how long a Starter waits for an app it started to
// answer on its port: a cold start on a slow machine, with room to spare.
const DefaultStartTimeout = 30 * time.Second

// ErrAppNotFound means nothing answers on the app's port and no installed
// Countersign app could be found to start.
var ErrAppNotFound = errors.New("the Countersign app is not running and was not found on this computer: install Countersign or start it, then try again")

// ErrAppDidNotStart means the installed app was started but never answered
// on its port.
var ErrAppDidNotStart = errors.New("the Countersign app was started but did not come up: start it from the applications menu to see why, then try again")

// Starter starts the installed Countersign app when nothing answers on its
// loopback port, and waits for it to come up, so an AI app that starts the
// bridge before the person has started Countersign still gets through.
type Starter struct {
	Port int
	// ConfigPath is passed to the app as -config when not empty: the app
	// must read the settings the bridge read.
	ConfigPath string
	// Timeout bounds the wait for a started app; zero means
	// DefaultStartTimeout.
	Timeout time.Duration
	Log     *slog.Logger

	lockFile string // serialises starts by the bridges of one user; "" for none

	answers func(port int) bool                                 // something accepts connections on 127.0.0.1:port
	command func(configPath string) (string, []string, error)   // the installed app's command, or ErrAppNotFound
	start   func(path string, args []string) (*exec.Cmd, error) // starts it detached from the bridge
	poll    time.Duration                                       // between checks of the port
}

// NewStarter returns a Starter for the app on port, started with
// configPath when that is not empty.
func NewStarter(port int, configPath string) *Starter {
	return &Starter{
		Port:       port,
		ConfigPath: configPath,
		answers:    answers,
		lockFile:   startLockFile(),
		command:    appCommand,
		start:      startDetached,
		poll:       200 * time.Millisecond,
	}
}

// Ensure returns nil at once when something answers on the port. Otherwise
// it starts the installed app and waits until the port answers, the
// timeout passes (ErrAppDidNotStart), the app exits with an error, or ctx
// ends. It returns ErrAppNotFound when there is no app to start.
func (s *Starter) Ensure(ctx context.Context) error {
	log := s.Log
	if log == nil {
		log = slog.Default()
	}
	if s.answers(s.Port) {
		return nil
	}
	limit := s.Timeout
	if limit <= 0 {
		limit = DefaultStartTimeout
	}
	// AI apps start all their servers at once: one bridge starts the app,
	// and the others wait for its port instead of starting copies.
	if unlock, err := s.lock(ctx, limit); err != nil {
		log.Debug("starting without the start lock", "err", err)
	} else {
		defer unlock()
	}
	if s.answers(s.Port) {
		return nil
	}
	path, args, err := s.command(s.ConfigPath)
	if err != nil {
		return err
	}
	log.Info("Countersign is not running; starting it", "path", path)
	cmd, err := s.start(path, args)
	if err != nil {
		return fmt.Errorf("the Countersign app is not running, and starting %s failed: %w", path, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	tick := time.NewTicker(s.poll)
	defer tick.Stop()
	for {
		if s.answers(s.Port) {
			log.Info("Countersign started", "port", s.Port)
			return nil
		}
		select {
		case err := <-exited:
			// A zero exit is a second copy that found another one starting
			// (or macOS's open, done handing over): keep waiting.
			if err != nil {
				return fmt.Errorf("%w (%s stopped: %v)", ErrAppDidNotStart, filepath.Base(path), err)
			}
			exited = nil
		case <-tick.C:
		case <-deadline.C:
			return fmt.Errorf("%w (no answer on port %d within %v)", ErrAppDidNotStart, s.Port, limit)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// lock takes the start lock, waiting up to limit for another bridge that
// holds it. The OS releases it when the holder exits, so a bridge that
// dies while starting the app leaves no stale lock.
func (s *Starter) lock(ctx context.Context, limit time.Duration) (unlock func(), err error) {
	if s.lockFile == "" {
		return nil, errors.New("no place for the start lock")
	}
	if err := os.MkdirAll(filepath.Dir(s.lockFile), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(s.lockFile, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(limit)
	for {
		ok, err := tryLock(f)
		switch {
		case err != nil:
			f.Close()
			return nil, err
		case ok:
			return func() { f.Close() }, nil // closing releases it
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, errors.New("another bridge held the start lock too long")
		}
		select {
		case <-time.After(s.poll):
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		}
	}
}

// startLockFile is the start lock in the user's cache folder.
func startLockFile() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "Countersign", "bridge-start.lock")
}

// answers reports whether something accepts connections on the app's
// loopback port.
func answers(port int) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 2*time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// appArgs are the app's arguments: the bridge's settings file, if it was
// given one.
func appArgs(configPath string) []string {
	if configPath == "" {
		return nil
	}
	return []string{"-config", configPath}
}

// locate finds the app's executable, named name: beside the bridge's own
// executable first (both are installed together; selves are its paths, as
// started and with links resolved), then in each of dirs (install folders
// the OS records), then through lookPath (PATH) when that is not nil.
func locate(selves []string, name string, dirs []string, lookPath func(string) (string, error)) (string, error) {
	var candidates []string
	for _, self := range selves {
		if self != "" {
			candidates = append(candidates, filepath.Join(filepath.Dir(self), name))
		}
	}
	for _, d := range dirs {
		if d != "" {
			candidates = append(candidates, filepath.Join(d, name))
		}
	}
	for _, c := range candidates {
		if isExecutable(c) {
			return c, nil
		}
	}
	if lookPath != nil {
		if p, err := lookPath(name); err == nil {
			if abs, err := filepath.Abs(p); err == nil && isExecutable(abs) {
				return abs, nil
			}
		}
	}
	return "", ErrAppNotFound
}

// isExecutable reports whether path is a regular file the bridge may run.
func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	return runtime.GOOS == "windows" || fi.Mode().Perm()&0o111 != 0
}

// selfPaths are the bridge's own executable as started and with symbolic
// links resolved (/usr/local/bin/countersign-bridge may be a link into the
// real install folder).
func selfPaths() []string {
	p, err := os.Executable()
	if err != nil {
		return nil
	}
	if r, err := filepath.EvalSymlinks(p); err == nil && r != p {
		return []string{p, r}
	}
	return []string{p}
}
