//go:build !linux

package main

import "github.com/countersign/countersign/internal/ui"

// trayHost: nil is Fyne's own tray, which Windows and macOS need.
func trayHost() ui.TrayHost { return nil }
