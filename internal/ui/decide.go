package ui

import (
	"bytes"
	"encoding/json"
	"image/color"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"

	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/redact"
)

// readTime is how long a call must have been on screen before a key can
// approve it: three quick presses of Ctrl+Enter must not approve calls
// nobody read.
const readTime = time.Second

// hiddenMark begins the text that stands in for a secret on screen, as in
// "[hidden github token]".
const hiddenMark = "[hidden "

// maskSecrets returns a call's arguments with each secret redact finds
// replaced by "[hidden <kind>]", and whether there was any.
func maskSecrets(args json.RawMessage) (json.RawMessage, bool) {
	out, counts, err := redact.RedactJSON(args)
	if err != nil || len(counts) == 0 {
		return args, false
	}
	return bytes.ReplaceAll(out, []byte("[redacted: "), []byte(hiddenMark)), true
}

// effects says, one plain sentence each, why approving a call deserves a
// second, deliberate step: it may change or delete data, it carries what
// looks like a secret, or its tool changed. None for an ordinary call.
func effects(c gate.Call) []string {
	var out []string
	where := ""
	if len(c.Targets) > 0 {
		where = " in " + targetText(c)
	}
	destructive := c.Info.Destructive()
	for _, w := range c.Warnings {
		if w.Kind == gate.WarnDestructive {
			destructive = true
		}
	}
	switch {
	case c.Info == nil:
		out = append(out, "Countersign does not know what this tool does, so it may change or delete data"+where+".")
	case destructive:
		out = append(out, "It may change or delete data"+where+".")
	}
	secret, changed := false, false
	for _, w := range c.Warnings {
		switch w.Kind {
		case gate.WarnSecret:
			secret = true
		case gate.WarnToolChanged:
			changed = true
		}
	}
	if secret {
		out = append(out, "It sends what looks like a secret to "+serverName(c)+".")
	}
	if changed {
		out = append(out, "The tool "+oneLine(c.Tool, 60)+" changed since Countersign first saw it.")
	}
	return out
}

// decisionTheme gives the Approve and Deny buttons fills that white text
// reads on at WCAG AA (4.5:1) in light and dark variants; Fyne's own
// green and red give 1.48:1 and 3.68:1. Everything else comes from the
// app's theme.
type decisionTheme struct{}

// The fills, checked by TestDecisionButtonsContrast.
var (
	approveFill = color.NRGBA{R: 0x1b, G: 0x6e, B: 0x33, A: 0xff} // dark green
	denyFill    = color.NRGBA{R: 0xb3, G: 0x26, B: 0x1e, A: 0xff} // dark red
)

func (decisionTheme) base() fyne.Theme { return fyne.CurrentApp().Settings().Theme() }

// Color is the app theme's colour, but for the decision buttons' fills.
func (t decisionTheme) Color(n fyne.ThemeColorName, v fyne.ThemeVariant) color.Color {
	switch n {
	case theme.ColorNameSuccess:
		return approveFill
	case theme.ColorNameError:
		return denyFill
	case theme.ColorNameForegroundOnSuccess, theme.ColorNameForegroundOnError:
		return color.White
	}
	return t.base().Color(n, v)
}

// Font is the app theme's.
func (t decisionTheme) Font(s fyne.TextStyle) fyne.Resource { return t.base().Font(s) }

// Icon is the app theme's.
func (t decisionTheme) Icon(n fyne.ThemeIconName) fyne.Resource { return t.base().Icon(n) }

// Size is the app theme's.
func (t decisionTheme) Size(n fyne.ThemeSizeName) float32 { return t.base().Size(n) }
