//go:build linux && cgo && !wayland

package attention

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/testenv"
)

// Under a real X server and window manager (Xvfb and Openbox): a window
// that is active is left alone; one that another window covers and that
// is not active is marked _NET_WM_STATE_DEMANDS_ATTENTION, which the
// window manager sets and a taskbar shows by flashing.
func TestDemandIfInactiveUnderARealWindowManager(t *testing.T) {
	for _, tool := range []string{"Xvfb", "openbox", "xmessage", "xprop"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (scripts/test installs it): %v", tool, err)
		}
	}
	display := startXvfb(t)
	t.Setenv("DISPLAY", display)
	wm := start(t, "openbox", "--sm-disable")
	waitFor(t, "the window manager", func() bool {
		if wm.exited() {
			t.Fatalf("openbox ended before managing the display: %s", wm.out.String())
		}
		// Openbox sets the client list once it manages windows; a window
		// mapped before then can be missed.
		return strings.Contains(xprop(t, "-root", "_NET_CLIENT_LIST"), "window id")
	})

	first := openWindow(t, "first")
	waitFor(t, "the first window to be active", func() bool { return active(t) == first })
	if did, err := demandIfInactive(uintptr(first)); err != nil || did {
		t.Fatalf("the active window was marked (%v, %v)", did, err)
	}
	if s := xprop(t, "-id", hex(first), "_NET_WM_STATE"); strings.Contains(s, "DEMANDS_ATTENTION") {
		t.Fatalf("the active window wants attention: %s", s)
	}

	second := openWindow(t, "second")
	waitFor(t, "the second window to be active", func() bool { return active(t) == second })
	if did, err := demandIfInactive(uintptr(first)); err != nil || !did {
		t.Fatalf("the window behind was not marked (%v, %v)", did, err)
	}
	waitFor(t, "the window behind to want attention", func() bool {
		return strings.Contains(xprop(t, "-id", hex(first), "_NET_WM_STATE"), "_NET_WM_STATE_DEMANDS_ATTENTION")
	})
}

// startXvfb starts a private X server and returns its display name.
func startXvfb(t *testing.T) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "800x600x24", "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{w}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(r).ReadString('\n')
	r.Close()
	if err != nil {
		t.Fatalf("Xvfb gave no display: %v", err)
	}
	return ":" + strings.TrimSpace(line)
}

// program is a program the test started: its output, and whether it ended.
type program struct {
	out  testenv.LockedBuffer
	done chan struct{}
}

func (p *program) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func start(t *testing.T, name string, args ...string) *program {
	t.Helper()
	p := &program{done: make(chan struct{})}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-p.done })
	return p
}

// openWindow shows an xmessage window titled title and returns its id.
func openWindow(t *testing.T, title string) uint64 {
	t.Helper()
	start(t, "xmessage", "-title", title, title)
	var id uint64
	waitFor(t, "window "+title, func() bool {
		for _, w := range clients(t) {
			if strings.Contains(xprop(t, "-id", hex(w), "WM_NAME"), `"`+title+`"`) {
				id = w
				return true
			}
		}
		return false
	})
	return id
}

// clients are the windows the window manager manages.
func clients(t *testing.T) []uint64 {
	out := xprop(t, "-root", "_NET_CLIENT_LIST")
	_, list, ok := strings.Cut(out, "#")
	if !ok {
		return nil
	}
	var ids []uint64
	for _, f := range strings.Split(list, ",") {
		if id, err := strconv.ParseUint(strings.TrimSpace(f), 0, 64); err == nil {
			ids = append(ids, id)
		}
	}
	return ids
}

func active(t *testing.T) uint64 {
	out := xprop(t, "-root", "_NET_ACTIVE_WINDOW")
	_, v, ok := strings.Cut(out, "#")
	if !ok {
		return 0
	}
	id, _ := strconv.ParseUint(strings.TrimSpace(v), 0, 64)
	return id
}

func xprop(t *testing.T, args ...string) string {
	out, _ := exec.Command("xprop", args...).CombinedOutput()
	return string(out)
}

func hex(id uint64) string { return "0x" + strconv.FormatUint(id, 16) }

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute) // CI runs every package's tests at once
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
