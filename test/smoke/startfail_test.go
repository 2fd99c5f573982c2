package smoke

import (
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStartFailureIsShown: when Countersign cannot start (here its
// settings folder cannot exist: a file stands where the folder should),
// the person who started it from a menu is told in a window, with the
// reason, and closing the window ends the program with a failure status.
func TestStartFailureIsShown(t *testing.T) {
	if os.Getenv("COUNTERSIGN_SMOKE") != "1" {
		t.Skip("set COUNTERSIGN_SMOKE=1 to run the end-to-end test of the real app on Xvfb")
	}
	peers := needTools(t)
	s := newSession(t, peers, "out-startfail")
	bin := s.build()
	blocker := filepath.Join(s.dir, "not-a-folder")
	write(t, blocker, "")
	app := s.start("app", bin, "-config", filepath.Join(blocker, "settings.json"))
	exited := make(chan error, 1)
	go func() { exited <- app.Wait() }()

	win := s.waitWindow("Countersign could not start")
	s.screenshot("start_failure.png", win, func(img image.Image) bool { return painted(img, 50, 50) })
	select {
	case err := <-exited:
		t.Fatalf("the app ended while its failure window was up: %v", err)
	default:
	}
	log, err := os.ReadFile(filepath.Join(s.out, "app.log"))
	if err != nil || !strings.Contains(string(log), "not a directory") {
		t.Errorf("the reason is not on the error output: %q, %v", log, err)
	}

	// Close is the second button: Tab, Tab, Space.
	s.key(win, "Tab")
	s.key(win, "Tab")
	s.key(win, "space")
	select {
	case err := <-exited:
		if err == nil || app.ProcessState.ExitCode() != 1 {
			t.Errorf("after Close the app ended with %v; want exit status 1", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the app did not end when its failure window was closed")
	}
}
