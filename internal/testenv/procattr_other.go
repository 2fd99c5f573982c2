//go:build !linux

package testenv

import (
	"os/exec"
	"syscall"
)

// DieWithTest does nothing here: only Linux has a parent-death signal.
func DieWithTest(*exec.Cmd, syscall.Signal) {}
