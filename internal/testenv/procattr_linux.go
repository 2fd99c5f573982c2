package testenv

import (
	"os/exec"
	"syscall"
)

// DieWithTest has the kernel send sig to cmd's process when the test
// process ends, so a test killed on timeout leaves no servers behind.
func DieWithTest(cmd *exec.Cmd, sig syscall.Signal) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = sig
}
