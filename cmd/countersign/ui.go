package main

import (
	fyneapp "fyne.io/fyne/v2/app"

	"github.com/countersign/countersign/internal/app"
	"github.com/countersign/countersign/internal/ui"
)

// The app's services are what the interface asks for.
var (
	_ ui.Queue           = app.Core{}.Queue
	_ ui.SettingsService = (*app.Settings)(nil)
	_ ui.AuditService    = (*app.AuditView)(nil)
	_ ui.ConnectService  = (*app.Connect)(nil)
)

// newUI builds the desktop interface on the app's core.
func newUI(c app.Core) (app.UI, error) {
	uiBuilt = true
	a := fyneapp.NewWithID("org.countersign.app")
	o := ui.Options{
		Queue:    c.Queue,
		Settings: c.Settings,
		Audit:    c.Audit,
		Connect:  c.Connect,
		Tray:     trayAvailable(),
		FirstRun: c.FirstRun,
		Release:  releaseMemory,
		Logger:   c.Logger,

		AuditExportBehind: c.AuditExportBehind,
	}
	if o.Tray {
		o.TrayHost = trayHost(a)
	}
	return ui.New(a, o), nil
}
