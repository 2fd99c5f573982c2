//go:build !windows

package app

import (
	"errors"
	"syscall"
)

// addrInUse reports whether err says the address is already taken.
func addrInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE)
}
