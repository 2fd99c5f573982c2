//go:build !linux

package notify

// desktopBus is unused where beeep alone shows notifications.
type desktopBus = any
