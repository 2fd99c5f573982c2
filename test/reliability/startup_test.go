package reliability

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/countersign/countersign/internal/vault"
)

// TestSettingsCorruptedWhileRunning: a settings file broken (or removed)
// while the app runs leaves the settings in force: sessions keep working,
// new ones start, and the log says what is wrong with the file.
func TestSettingsCorruptedWhileRunning(t *testing.T) {
	enabled(t)
	_, s, in, hc := startMemApp(t)
	ap := approveAll(in.core.Queue)
	defer ap.stop()
	h := in.openSession(t, hc, "mem")
	defer h.close()
	id := 0
	echo := func(h *host, msg string) {
		t.Helper()
		id++
		wantEcho(t, h, id, msg)
	}
	echo(h, "before")

	for _, broken := range []string{`{"version":2,"port":`, "\x00\x01 not settings", `{"version":2,"servers":[{"id":"mem"}]}`} {
		seen := strings.Count(in.logs.String(), "settings file is invalid")
		if err := os.WriteFile(s.cfgPath, []byte(broken), 0o600); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the app to notice the broken settings", func() bool {
			return strings.Count(in.logs.String(), "settings file is invalid") > seen
		})
		echo(h, fmt.Sprintf("open session, broken %q", broken))
		h2 := in.newHost(hc, "mem")
		if err := h2.open(context.Background(), "reliability-host"); err != nil {
			t.Fatalf("a new session after the settings broke: %v", err)
		}
		echo(h2, fmt.Sprintf("new session, broken %q", broken))
		h2.close()
	}
	t.Logf("the log says: %s", firstLine(in.logs.String(), "settings file is invalid"))

	// Removed for a moment: the settings in force stay too.
	if err := os.Remove(s.cfgPath); err != nil {
		t.Fatal(err)
	}
	h3 := in.newHost(hc, "mem")
	if err := h3.open(context.Background(), "reliability-host"); err != nil {
		t.Fatalf("a new session while the settings file is missing: %v", err)
	}
	echo(h3, "file missing")
	h3.close()
}

func firstLine(log, containing string) string {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, containing) {
			return l
		}
	}
	return ""
}

// TestNoKeychainAtStart: with no keychain to hold the local token, the app
// does not start, says so in words that name the keychain, and does not
// crash or listen.
func TestNoKeychainAtStart(t *testing.T) {
	enabled(t)
	mem := startMemUpstream(t)
	s := newSetup(t, httpServer("mem", mem.url))
	s.keyring = nil // the real OS keychain…
	// …on a session bus that is not there.
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+filepath.Join(t.TempDir(), "no-bus"))
	_, err := tryStartApp(t, s)
	if err == nil {
		t.Fatal("the app started with no keychain")
	}
	t.Logf("Run said: %v", err)
	if !errors.Is(err, vault.ErrUnavailable) || !strings.Contains(err.Error(), "keychain") {
		t.Errorf("Run: %v; want a message that says the keychain is not available", err)
	}
	if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port)); err == nil {
		c.Close()
		t.Error("the app listens although it could not start")
	}
}
