//go:build !windows

package app

import (
	"os"
	"path/filepath"
	"runtime"

	"github.com/countersign/countersign/internal/config"
)

// defaultAutostart is start at login for this system and this executable,
// keeping a non-default settings file.
func defaultAutostart(configPath string) autostart {
	switch runtime.GOOS {
	case "linux", "freebsd", "openbsd", "netbsd":
	default:
		return autostart{unavailable: "Starting at login can't be set here on " + runtime.GOOS + " yet; the installer will offer it."}
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return autostart{unavailable: "Starting at login can't be set: there is no config directory (" + err.Error() + ")."}
	}
	exe, err := os.Executable()
	if err != nil {
		return autostart{unavailable: "Starting at login can't be set: Countersign cannot tell where it is installed."}
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	cmd := []string{exe}
	if def, err := config.DefaultPath(); err == nil && configPath != "" && configPath != def {
		cmd = append(cmd, "-config", configPath)
	}
	return autostart{file: filepath.Join(dir, "autostart", "countersign.desktop"), command: cmd}
}
