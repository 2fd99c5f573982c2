// Package assets holds Countersign's icons, embedded so the app needs no
// files beside its binary.
package assets

import _ "embed"

// Icon is the app icon, 512×512 PNG.
//
//go:embed icon.png
var Icon []byte

// Tray is the tray icon while nothing waits, 64×64 PNG: small enough to
// send to the tray host cheaply, and to travel with every notification.
//
//go:embed icon-tray.png
var Tray []byte

// TrayWaiting is the tray icon with a badge, shown while calls wait for a
// decision; 64×64 PNG.
//
//go:embed icon-tray-waiting.png
var TrayWaiting []byte
