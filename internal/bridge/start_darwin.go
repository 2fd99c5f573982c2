package bridge

import (
	"errors"
	"os/exec"
	"syscall"
)

// bundleID is the app bundle's identifier (FyneApp.toml's ID).
const bundleID = "org.countersign.app"

// appCommand opens the installed app bundle by its identifier, in the
// background (-g): Launch Services finds it wherever it was installed, and
// open fails when there is none.
func appCommand(configPath string) (string, []string, error) {
	args := []string{"-g", "-b", bundleID}
	if a := appArgs(configPath); a != nil {
		args = append(append(args, "--args"), a...)
	}
	return "/usr/bin/open", args, nil
}

// startDetached starts open in a session of its own, with its stdio on
// /dev/null; Launch Services starts the app itself outside the bridge's
// process tree.
func startDetached(path string, args []string) (*exec.Cmd, error) {
	cmd := exec.Command(path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	return cmd, cmd.Start()
}

// refused reports whether err is a refused connection: nothing listens.
func refused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
