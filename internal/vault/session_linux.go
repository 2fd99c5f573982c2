package vault

import "os"

// sessionHint explains a keychain failure in a process with no desktop
// session bus (a terminal outside the desktop, ssh, a container): the
// Secret Service lives on that bus, and without its address godbus falls
// back to dbus-launch, which fails in words nobody can act on.
func sessionHint() string {
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") != "" {
		return ""
	}
	return "this terminal is not part of a desktop session (DBUS_SESSION_BUS_ADDRESS is not set), so the keyring cannot be reached. " +
		"Run the command in a terminal of the desktop where Countersign runs, " +
		"or set DBUS_SESSION_BUS_ADDRESS to that session's bus address (scripts/run prints it when it starts its own)"
}
