package app

import (
	"errors"

	"golang.org/x/sys/windows"
)

// addrInUse reports whether err says the address is already taken. Windows
// sockets say so with WSAEADDRINUSE (10048), which syscall.EADDRINUSE —
// a number Go invents on Windows — never matches.
func addrInUse(err error) bool {
	return errors.Is(err, windows.WSAEADDRINUSE)
}
