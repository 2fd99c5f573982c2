package app

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// autostart turns starting at login on and off. On Linux and the BSDs it
// is an XDG autostart entry, $XDG_CONFIG_HOME/autostart/countersign.desktop;
// on Windows a value under the person's Run key (autostart_windows.go).
type autostart struct {
	file        string        // the autostart entry; "" where unsupported
	command     []string      // what the entry starts
	unavailable string        // why it cannot be used; empty when it can
	reg         loginRegistry // Windows: the Run key; nil for an XDG entry
}

// loginRegistry is start at login kept somewhere other than an XDG entry
// file: Windows' Run key.
type loginRegistry interface {
	state() (LoginSetting, error)
	set(on bool) error
	reconcile(on bool) (bool, error)
}

func (a autostart) state() (LoginSetting, error) {
	if a.unavailable != "" {
		return LoginSetting{Unavailable: a.unavailable}, nil
	}
	if a.reg != nil {
		return a.reg.state()
	}
	_, err := os.Stat(a.file)
	switch {
	case err == nil:
		return LoginSetting{On: true}, nil
	case errors.Is(err, fs.ErrNotExist):
		return LoginSetting{}, nil
	}
	return LoginSetting{}, fmt.Errorf("checking start at login: %w", err)
}

func (a autostart) set(on bool) error {
	if a.unavailable != "" {
		return fmt.Errorf("%w: %s", ErrNotAvailable, a.unavailable)
	}
	if a.reg != nil {
		return a.reg.set(on)
	}
	if !on {
		if err := os.Remove(a.file); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("turning off start at login: %w", err)
		}
		return nil
	}
	if err := writeEntry(a.file, []byte(a.entry())); err != nil {
		return fmt.Errorf("turning on start at login: %w", err)
	}
	return nil
}

// entry is the desktop entry that starts Countersign at login.
func (a autostart) entry() string {
	quoted := make([]string, len(a.command))
	for i, arg := range a.command {
		quoted[i] = execQuote(arg)
	}
	return "[Desktop Entry]\n" +
		"Type=Application\n" +
		"Name=Countersign\n" +
		"Comment=Approve or deny every tool call your AI apps make\n" +
		"Exec=" + strings.Join(quoted, " ") + "\n" +
		"Icon=countersign\n" +
		"Terminal=false\n" +
		"X-GNOME-Autostart-enabled=true\n"
}

// execQuote quotes one argument for a desktop entry's Exec key, as the
// Desktop Entry Specification says: in double quotes, with ", `, $ and \
// escaped by a backslash, and % doubled.
func execQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '`', '$':
			b.WriteString(`\\`)
			b.WriteRune(r)
		case '\\':
			b.WriteString(`\\\\`)
		case '%':
			b.WriteString("%%")
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// writeEntry replaces the autostart entry so that the session manager reads
// the old entry or the new one, never a part.
func writeEntry(path string, b []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".countersign-*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(b); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// reconcile makes the autostart entry match the settings file: present and
// starting this executable when on (so a moved or updated install still
// starts); when off, removed if it is the entry this install would write
// (another install's or a hand-made entry is left alone). It reports
// whether it changed the entry.
func (a autostart) reconcile(on bool) (bool, error) {
	if a.unavailable != "" {
		return false, nil
	}
	if a.reg != nil {
		return a.reg.reconcile(on)
	}
	b, err := os.ReadFile(a.file)
	switch {
	case err == nil && string(b) == a.entry() && on:
		return false, nil
	case err == nil && !on && string(b) != a.entry():
		return false, nil
	case err == nil, errors.Is(err, fs.ErrNotExist) && on:
		return true, a.set(on)
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("checking start at login: %w", err)
}
