package app

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/windows/registry"

	"github.com/countersign/countersign/internal/config"
)

// runKeyPath is where Windows looks, at each log-on, for programs to start.
const runKeyPath = `Software\Microsoft\Windows\CurrentVersion\Run`

// runValueName names Countersign's value under the Run key. The installer
// writes the same name: under HKEY_LOCAL_MACHINE for everyone on the
// computer (per-machine MSI), or under the person's own key (per-user MSI).
const runValueName = "Countersign"

// defaultAutostart is start at login on Windows: a value under the person's
// Run key that starts this executable, keeping a non-default settings file.
func defaultAutostart(configPath string) autostart {
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
	return autostart{command: cmd, reg: runKey{
		user:    registry.CURRENT_USER,
		machine: registry.LOCAL_MACHINE,
		path:    runKeyPath,
		name:    runValueName,
		command: runCommand(cmd),
	}}
}

// runKey is start at login as a Run value. The person's own value (user)
// is theirs to turn on and off; a value for everyone on the computer
// (machine, written by the per-machine installer) only an administrator
// can remove, so while it is there starting at login is on and can't be
// changed here.
type runKey struct {
	user, machine registry.Key
	path, name    string
	command       string // the value this executable writes
}

// runCommand is a command line for the Run key: every argument quoted the
// way Windows splits them, the program always in double quotes.
func runCommand(cmd []string) string {
	parts := make([]string, len(cmd))
	for i, arg := range cmd {
		parts[i] = syscall.EscapeArg(arg)
		if i == 0 && !strings.HasPrefix(parts[0], `"`) {
			parts[0] = `"` + parts[0] + `"`
		}
	}
	return strings.Join(parts, " ")
}

// machineWide is the message shown while the computer-wide value is set.
const machineWide = "Your organization starts Countersign at login on this computer; ask your IT administrator to change it."

// read returns the named value under root's Run key, and whether it is there.
func (r runKey) read(root registry.Key) (string, bool, error) {
	k, err := registry.OpenKey(root, r.path, registry.QUERY_VALUE)
	if errors.Is(err, registry.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	defer k.Close()
	v, _, err := k.GetStringValue(r.name)
	if errors.Is(err, registry.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return v, true, nil
}

func (r runKey) state() (LoginSetting, error) {
	if _, ok, err := r.read(r.machine); err != nil {
		return LoginSetting{}, fmt.Errorf("checking start at login: %w", err)
	} else if ok {
		return LoginSetting{On: true, Unavailable: machineWide}, nil
	}
	_, ok, err := r.read(r.user)
	if err != nil {
		return LoginSetting{}, fmt.Errorf("checking start at login: %w", err)
	}
	return LoginSetting{On: ok}, nil
}

func (r runKey) set(on bool) error {
	if _, ok, err := r.read(r.machine); err == nil && ok {
		return fmt.Errorf("%w: %s", ErrNotAvailable, machineWide)
	}
	k, _, err := registry.CreateKey(r.user, r.path, registry.SET_VALUE)
	if err != nil {
		return fmt.Errorf("changing start at login: %w", err)
	}
	defer k.Close()
	if !on {
		if err := k.DeleteValue(r.name); err != nil && !errors.Is(err, registry.ErrNotExist) {
			return fmt.Errorf("turning off start at login: %w", err)
		}
		return nil
	}
	if err := k.SetStringValue(r.name, r.command); err != nil {
		return fmt.Errorf("turning on start at login: %w", err)
	}
	return nil
}

// reconcile makes the person's Run value start this executable when the
// settings say on (so a moved or updated install still starts). When they
// say off it leaves the value alone: "off" is also what a settings file
// that never mentions it says, and the value may be the per-user
// installer's, which an administrator turns off with AUTOSTART=0. Turning
// it off in Countersign's window removes it.
func (r runKey) reconcile(on bool) (bool, error) {
	if !on {
		return false, nil
	}
	if _, ok, err := r.read(r.machine); err != nil {
		return false, fmt.Errorf("checking start at login: %w", err)
	} else if ok {
		return false, nil
	}
	v, ok, err := r.read(r.user)
	if err != nil {
		return false, fmt.Errorf("checking start at login: %w", err)
	}
	if ok && v == r.command {
		return false, nil
	}
	return true, r.set(true)
}
