//go:build !linux

package main

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/systray"

	"github.com/countersign/countersign/internal/ui"
)

// fyneTray is Fyne's own tray, which Windows and macOS need, with the
// tooltip Fyne does not offer: its tray is fyne.io/systray, which has one.
type fyneTray struct{ desktop.App }

// trayHost is Fyne's tray on app a.
func trayHost(a fyne.App) ui.TrayHost {
	da, ok := a.(desktop.App)
	if !ok {
		return nil
	}
	return fyneTray{da}
}

// SetSystemTrayTooltip shows text when the pointer rests on the icon.
func (fyneTray) SetSystemTrayTooltip(text string) { systray.SetTooltip(text) }
