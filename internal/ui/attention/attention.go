// Package attention marks a window as wanting the person's attention —
// its taskbar entry flashes — for when the window manager refuses to bring
// it forward. A new call raises the review window; where focus stealing
// prevention keeps it behind the IDE, the flash is what the person sees.
package attention

import (
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver"
)

// settle is how long the window manager gets to act on a request for the
// focus before the window is judged to have been refused it.
const settle = 400 * time.Millisecond

// Request asks for the person's attention to w if, a moment after it asked
// for the focus, it still does not have it. It returns at once and does
// nothing where the driver gives no native window (tests, Wayland) or the
// platform has no such mark.
func Request(w fyne.Window) {
	nw, ok := w.(driver.NativeWindow)
	if !ok {
		return
	}
	nw.RunNative(func(ctx any) {
		request(ctx)
	})
}
