//go:build linux && cgo && !wayland

package attention

/*
#cgo LDFLAGS: -lX11
#include <stdlib.h>
#include <X11/Xlib.h>
#include <X11/Xatom.h>

// activeWindow returns the window _NET_ACTIVE_WINDOW names, or 0.
static Window activeWindow(Display *d) {
	Atom active = XInternAtom(d, "_NET_ACTIVE_WINDOW", False);
	Atom type;
	int format;
	unsigned long n, after;
	unsigned char *data = NULL;
	Window w = 0;
	if (XGetWindowProperty(d, DefaultRootWindow(d), active, 0, 1, False, XA_WINDOW,
			&type, &format, &n, &after, &data) == Success && data != NULL) {
		if (type == XA_WINDOW && format == 32 && n == 1) {
			w = *(Window *)data;
		}
		XFree(data);
	}
	return w;
}

// demandAttention asks the window manager, as EWMH says a client does for
// a mapped window, to add _NET_WM_STATE_DEMANDS_ATTENTION to w's state.
static void demandAttention(Display *d, Window w) {
	XEvent e = {0};
	e.xclient.type = ClientMessage;
	e.xclient.window = w;
	e.xclient.message_type = XInternAtom(d, "_NET_WM_STATE", False);
	e.xclient.format = 32;
	e.xclient.data.l[0] = 1; // _NET_WM_STATE_ADD
	e.xclient.data.l[1] = XInternAtom(d, "_NET_WM_STATE_DEMANDS_ATTENTION", False);
	e.xclient.data.l[3] = 1; // from an application
	XSendEvent(d, DefaultRootWindow(d), False,
		SubstructureRedirectMask | SubstructureNotifyMask, &e);
	XFlush(d);
}
*/
import "C"

import (
	"errors"
	"time"

	"fyne.io/fyne/v2/driver"
)

// request waits for the window manager to act on the focus request, then
// marks the window if it is not the active one.
func request(ctx any) {
	x, ok := ctx.(driver.X11WindowContext)
	if !ok || x.WindowHandle == 0 {
		return
	}
	go func() {
		time.Sleep(settle)
		_, _ = demandIfInactive(x.WindowHandle)
	}()
}

// demandIfInactive marks window as wanting attention unless it is the
// active window, and reports whether it did. It uses a connection of its
// own to the display in $DISPLAY, not the toolkit's.
func demandIfInactive(window uintptr) (bool, error) {
	d := C.XOpenDisplay(nil)
	if d == nil {
		return false, errors.New("cannot open the X display")
	}
	defer C.XCloseDisplay(d)
	w := C.Window(window)
	if C.activeWindow(d) == w {
		return false, nil
	}
	C.demandAttention(d, w)
	return true, nil
}
