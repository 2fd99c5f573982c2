// Package smoke runs the real Countersign tray app end to end on a virtual
// display: a private X server (Xvfb), a private session bus with a
// notification daemon (dunst, started by D-Bus on demand) and an unlocked
// gnome-keyring, the reference MCP server from npm upstream, and the MCP
// SDK's client as the AI app. A person is played with the keyboard
// (xdotool) and the tray menu (com.canonical.dbusmenu); screenshots go to
// test/smoke/out, which CI keeps. TestBridgeStartsTheApp runs the bridge
// with the app stopped (logs in out-bridge, or out-installed when
// COUNTERSIGN_INSTALLED names the folder of installed binaries, as
// scripts/test-deb does).
//
// It runs when COUNTERSIGN_SMOKE=1. Under CI (CI set) missing tools fail
// the test instead of skipping it.
package smoke
