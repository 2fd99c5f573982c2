//go:build !linux

package main

// haveDisplay: Windows and macOS always have one for a logged-in user.
func haveDisplay() error { return nil }

// trayAvailable: Windows and macOS always have a tray (menu bar extras).
func trayAvailable() bool { return true }
