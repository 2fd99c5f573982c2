package main

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// TestNoLocaleErrorUnderCUTF8: with LANG=C.UTF-8 (containers, minimal
// installs) the app starts without Fyne printing "Error parsing user
// locale C". The test binary initialises the same packages as the app.
func TestNoLocaleErrorUnderCUTF8(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "darwin" {
		t.Skip("Fyne reads the language from the OS there")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = []string{"LANG=C.UTF-8", "PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if strings.Contains(string(out), "locale") {
		t.Errorf("starting under LANG=C.UTF-8 printed:\n%s", out)
	}
}
