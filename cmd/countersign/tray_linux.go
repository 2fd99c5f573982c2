//go:build linux

package main

import (
	"fyne.io/fyne/v2"
	"fyne.io/systray"
	"github.com/godbus/dbus/v5"

	"github.com/countersign/countersign/internal/ui"
)

// sniTray is the system tray on Linux: a StatusNotifierItem and its
// dbusmenu on the session bus, through fyne.io/systray as Fyne's own tray
// does. Fyne's tray also keeps a hidden OpenGL window for the app's whole
// life, which loads the graphics driver (with Mesa's software renderer,
// over 50 MB) before any window is shown; this one touches only D-Bus, so
// the graphics stack loads when the first window opens.
type sniTray struct {
	started bool
}

// trayHost is the tray the interface uses; Run has checked that there is
// a session bus.
func trayHost(fyne.App) ui.TrayHost { return &sniTray{} }

// SetSystemTrayIcon shows icon, a PNG, in the tray.
func (t *sniTray) SetSystemTrayIcon(icon fyne.Resource) {
	systray.SetIcon(icon.Content())
}

// SetSystemTrayMenu replaces the tray's menu with m; the first call puts
// the item on the bus. Actions run on the UI goroutine. It does not end
// the item when the app quits: its bus names go when the process exits.
func (t *sniTray) SetSystemTrayMenu(m *fyne.Menu) {
	if !t.started {
		t.started = true
		start, _ := systray.RunWithExternalLoop(nil, nil)
		systray.SetTitle("Countersign") // some tray hosts fail on an item with no title
		start()
	}
	systray.ResetMenu() // closes the removed items' ClickedCh, ending their goroutines
	for _, it := range m.Items {
		if it.IsSeparator {
			systray.AddSeparator()
			continue
		}
		item := systray.AddMenuItem(it.Label, "")
		if it.Disabled {
			item.Disable()
		}
		action := it.Action
		go func() {
			for range item.ClickedCh {
				if action != nil {
					fyne.Do(action)
				}
			}
		}()
	}
}

// SetSystemTrayTooltip shows text when the pointer rests on the icon.
func (t *sniTray) SetSystemTrayTooltip(text string) {
	systray.SetTooltip(text)
}

// TrayShown reports whether a tray host shows the item: a
// StatusNotifierWatcher is on the session bus (the item registers with it,
// and again whenever a new one starts) and says a host is registered. Stock
// GNOME has neither, and the item then goes nowhere: systray only logs
// "failed to register".
func (t *sniTray) TrayShown() bool {
	conn, err := dbus.SessionBus()
	if err != nil {
		return false
	}
	v, err := conn.Object("org.kde.StatusNotifierWatcher", "/StatusNotifierWatcher").
		GetProperty("org.kde.StatusNotifierWatcher.IsStatusNotifierHostRegistered")
	if err != nil {
		return false
	}
	on, _ := v.Value().(bool)
	return on
}
