package bridge

import (
	"errors"
	"os/exec"
	"syscall"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
)

// installKey is where the Countersign installer records its folder, as the
// string value InstallDir: under HKEY_LOCAL_MACHINE for a per-machine
// install, under HKEY_CURRENT_USER for a per-user one.
const installKey = `Software\Countersign`

// appCommand is the installed app: countersign.exe beside the bridge, else
// in the folder the installer recorded.
func appCommand(configPath string) (string, []string, error) {
	path, err := locate(selfPaths(), "countersign.exe", installDirs(), nil)
	return path, appArgs(configPath), err
}

// installDirs reads InstallDir from the per-machine, then the per-user
// installer key.
func installDirs() []string {
	var dirs []string
	for _, root := range []registry.Key{registry.LOCAL_MACHINE, registry.CURRENT_USER} {
		k, err := registry.OpenKey(root, installKey, registry.QUERY_VALUE|registry.WOW64_64KEY)
		if err != nil {
			continue
		}
		if dir, _, err := k.GetStringValue("InstallDir"); err == nil {
			dirs = append(dirs, dir)
		}
		k.Close()
	}
	return dirs
}

// startDetached starts the app without a console, in a process group of
// its own, and out of the AI app's job object where the job allows it, so
// the app lives on when the AI app ends the bridge. Its stdio is NUL: the
// bridge's stdout is the AI app's MCP channel.
func startDetached(path string, args []string) (*exec.Cmd, error) {
	flags := uint32(windows.DETACHED_PROCESS | windows.CREATE_NEW_PROCESS_GROUP)
	cmd := exec.Command(path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: flags | windows.CREATE_BREAKAWAY_FROM_JOB}
	if err := cmd.Start(); err == nil {
		return cmd, nil
	}
	// A job that forbids breaking away refuses the whole start.
	cmd = exec.Command(path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: flags}
	return cmd, cmd.Start()
}

// refused reports whether err is a refused connection: nothing listens.
// Windows reports WSAECONNREFUSED, which syscall.ECONNREFUSED (a number
// Go made up for Windows) never matches.
func refused(err error) bool {
	return errors.Is(err, windows.WSAECONNREFUSED) || errors.Is(err, syscall.ECONNREFUSED)
}
