package main

import (
	"errors"
	"os"

	"github.com/godbus/dbus/v5"
)

// haveDisplay fails when there is no graphical session to show the review
// window in: with no way to ask the person, Countersign does not start.
func haveDisplay() error {
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return errors.New("no display (DISPLAY and WAYLAND_DISPLAY are unset): Countersign needs a desktop session to ask you about tool calls")
	}
	return nil
}

// trayAvailable reports whether a system tray can be used: on Linux the
// tray lives on the session bus, and Fyne cannot quit cleanly with a tray
// but no bus (fyne-io/fyne#6403).
func trayAvailable() bool {
	_, err := dbus.SessionBus()
	return err == nil
}
