// Package portal asks the desktop's own file chooser where to save a file,
// through the XDG desktop portal (org.freedesktop.portal.FileChooser), so
// the person gets the dialog they know from every other app, with their
// bookmarks and recent places. Where no portal answers, callers fall back
// to the toolkit's dialog.
package portal

import "errors"

// ErrUnavailable means no desktop file chooser answered: use another
// dialog.
var ErrUnavailable = errors.New("the desktop's file chooser is not available")
