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

// TrayPaused is the tray icon while Countersign is paused and denies every
// call: greyed, with a pause badge; 64×64 PNG, made from icon-tray.png with
// ImageMagick:
//
//	convert icon-tray.png -colorspace Gray -fill white -colorize 25% \
//	  \( -size 64x64 xc:none -fill '#E8A317' -stroke white -strokewidth 3 \
//	     -draw "circle 47,17 47,3" -stroke none -fill '#202020' \
//	     -draw "rectangle 41,10 44,24" -draw "rectangle 50,10 53,24" \) \
//	  -compose over -composite -define png:color-type=6 icon-tray-paused.png
//
//go:embed icon-tray-paused.png
var TrayPaused []byte
