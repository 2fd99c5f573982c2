package reliability

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/countersign/countersign/internal/audit"
)

// smallDisk mounts a tmpfs of the given size (such as "4m") on a new
// folder and returns it. Mounting needs root, which the CI machine's
// scripts have.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs (scripts/test runs as root on the CI machine)")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Fatalf("mounting a %s tmpfs: %v", size, err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// fill writes a file on dir's filesystem until the disk is full, and
// returns a function that frees the space again.
func fill(t *testing.T, dir string) (free func()) {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			break
		}
	}
	f.Close()
	return func() { os.Remove(path) }
}

// TestAuditDiskFull: when the audit log's disk is full, calls are denied
// rather than run unrecorded and the person is told; once there is room
// again calls run, and the chain verifies. No call the server ran lacks
// its approval in the audit.
func TestAuditDiskFull(t *testing.T) {
	enabled(t)
	mem := startMemUpstream(t)
	s := newSetup(t, httpServer("mem", mem.url))
	s.dataDir = smallDisk(t, "8m")
	in := startApp(t, s)
	ap := approveAll(in.core.Queue)
	hc := newClient(t)
	h := in.openSession(t, hc, "mem")
	id := 0
	call := func(msg string) (string, bool) {
		id++
		return answerWithin(t, h, id, "echo", map[string]string{"message": msg}).text()
	}
	if text, isErr := call("before"); isErr {
		t.Fatalf("before the disk filled: %q", text)
	}

	free := fill(t, s.dataDir)
	denied := 0
	for i := 0; i < 50 && denied < 3; i++ {
		text, isErr := call(fmt.Sprintf("full %d", i))
		switch {
		case !isErr:
			// The write found room the log had already taken.
		case strings.Contains(text, "could not write its audit log"):
			denied++
		default:
			t.Errorf("disk full: answer %q, want a denial that names the audit log", text)
		}
	}
	if denied == 0 {
		t.Fatal("50 calls ran on a full disk: none was denied for want of an audit record")
	}
	waitFor(t, "the person to be told", func() bool {
		for _, n := range in.notes.all() {
			if strings.Contains(n, "can't write its audit log") {
				return true
			}
		}
		return false
	})
	t.Logf("the person was told: %q", in.notes.all()[0])

	free()
	waitFor(t, "calls to run again once there is room", func() bool {
		text, isErr := call("room again")
		return !isErr && text == "Echo: room again"
	})
	h.close()
	ap.stop()
	in.stopCleanly(t)
	checkRanWereApproved(t, auditRecords(t, s.dataDir), mem.rec)
}

// checkRanWereApproved: every call the server ran was submitted and
// approved in the audit first.
func checkRanWereApproved(t *testing.T, recs []audit.Record, rec *recorder) {
	t.Helper()
	approved := map[string]bool{}
	for _, st := range stories(recs) {
		if len(st.submitted) > 0 && len(st.decided) > 0 && st.decided[0].Outcome == audit.OutcomeApproved {
			approved[argMessage(st.submitted[0].Arguments)] = true
		}
	}
	for msg := range rec.snapshot() {
		if !approved[msg] {
			t.Errorf("the server ran %q, which the audit does not show approved", msg)
		}
	}
}

// TestAuditReadOnly: Countersign started with its audit log on a
// read-only disk does not serve calls it cannot record: it stops with a
// message that says why, and nothing crashes.
func TestAuditReadOnly(t *testing.T) {
	enabled(t)
	mem := startMemUpstream(t)
	s := newSetup(t, httpServer("mem", mem.url))
	s.dataDir = smallDisk(t, "8m")
	in := startApp(t, s)
	if err := in.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := syscall.Mount("", s.dataDir, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		t.Fatalf("making the audit's disk read-only: %v", err)
	}
	in2, err := tryStartApp(t, s)
	if err == nil {
		// It started: then every call must be denied and the person told.
		ap := approveAll(in2.core.Queue)
		defer ap.stop()
		hc := newClient(t)
		h := in2.openSession(t, hc, "mem")
		text, isErr := answerWithin(t, h, 1, "echo", map[string]string{"message": "read-only"}).text()
		if !isErr || !strings.Contains(text, "audit log") {
			t.Errorf("read-only audit: answer %q, want a denial that names the audit log", text)
		}
		if mem.rec.count("read-only") != 0 {
			t.Error("a call ran with no audit record")
		}
		return
	}
	t.Logf("Run said: %v", err)
	if !strings.Contains(err.Error(), "audit log") || !strings.Contains(strings.ToLower(err.Error()), "read") {
		t.Errorf("Run: %v; want a message that says the audit log is read-only", err)
	}
}
