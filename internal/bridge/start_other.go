//go:build !windows && !darwin

package bridge

import (
	"errors"
	"os/exec"
	"syscall"
)

// appCommand is the installed app: countersign beside the bridge, else on
// PATH.
func appCommand(configPath string) (string, []string, error) {
	path, err := locate(selfPaths(), "countersign", nil, exec.LookPath)
	return path, appArgs(configPath), err
}

// startDetached starts the app in a session of its own, so the AI app's
// signals to the bridge's process group do not reach it and it lives on
// when the bridge exits. Its stdio is /dev/null: the bridge's stdout is
// the AI app's MCP channel.
func startDetached(path string, args []string) (*exec.Cmd, error) {
	cmd := exec.Command(path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	return cmd, cmd.Start()
}

// refused reports whether err is a refused connection: nothing listens.
func refused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
