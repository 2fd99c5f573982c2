package main

import (
	"fyne.io/fyne/v2"
	fyneapp "fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/widget"
)

// uiBuilt is set once the desktop interface exists: from then on a failure
// is the interface's to show.
var uiBuilt bool

// startFailureText is what the window says above the reason.
const startFailureText = "Countersign could not start, so the AI apps that use it cannot reach the servers it connects them to. " +
	"This is what went wrong. If starting it again does not help, send this message to whoever looks after your computer."

// showStartFailure tells the person in a window why Countersign could not
// start: started from a menu or at sign-in, its error output goes where
// nobody reads it. It returns when the window is closed.
func showStartFailure(err error) {
	a := fyneapp.NewWithID("org.countersign.app")
	w := a.NewWindow("Countersign could not start")
	intro := widget.NewLabel(startFailureText)
	intro.Wrapping = fyne.TextWrapWord
	reason := widget.NewLabel(err.Error())
	reason.Wrapping = fyne.TextWrapWord
	reason.TextStyle = fyne.TextStyle{Bold: true}
	copyButton := widget.NewButton("Copy the message", func() {
		a.Clipboard().SetContent("Countersign could not start: " + err.Error())
	})
	closeButton := widget.NewButton("Close", a.Quit)
	closeButton.Importance = widget.HighImportance
	buttons := container.NewHBox(layout.NewSpacer(), copyButton, closeButton)
	w.SetContent(container.NewBorder(nil, buttons, nil, nil, container.NewVScroll(container.NewVBox(intro, reason))))
	w.Resize(fyne.NewSize(560, 260))
	w.SetOnClosed(a.Quit)
	w.CenterOnScreen()
	w.ShowAndRun()
}
