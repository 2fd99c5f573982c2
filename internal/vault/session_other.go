//go:build !linux

package vault

// sessionHint: Windows and macOS keychains need no session bus.
func sessionHint() string { return "" }
