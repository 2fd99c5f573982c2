package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain runs the bridge's main instead of the tests when the test binary
// is started as the bridge by a test below.
func TestMain(m *testing.M) {
	if os.Getenv("COUNTERSIGN_BRIDGE_TEST_MAIN") == "1" {
		os.Args = append([]string{"countersign-bridge"}, strings.Fields(os.Getenv("COUNTERSIGN_BRIDGE_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runBridge starts this test binary as countersign-bridge with args, feeds
// it stdin, and returns its stdout, stderr and exit code.
func runBridge(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "COUNTERSIGN_BRIDGE_TEST_MAIN=1", "COUNTERSIGN_BRIDGE_TEST_ARGS="+strings.Join(args, " "),
		"HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"))
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return out.String(), errOut.String(), 0
	case errors.As(err, &exit):
		return out.String(), errOut.String(), exit.ExitCode()
	}
	t.Fatal(err)
	return "", "", -1
}

const request = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"Claude","version":"1"}}}` + "\n"

// An error the bridge cannot recover from is answered to the AI app, said
// on stderr, and ends the bridge with a non-zero exit status, so the AI app
// shows the server as failed rather than as stopped normally.
func TestBridgeExitsNonZeroWhenItCannotWork(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "settings.json")
	if err := os.WriteFile(good, []byte(`{"port":47123,"servers":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(dir, "broken.json")
	if err := os.WriteFile(broken, []byte(`{"port":`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		why  string
	}{
		{"a server not in the settings", []string{"-config", good, "github"}, `there is no server \"github\"`},
		{"settings that do not parse", []string{"-config", broken, "github"}, "broken.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runBridge(t, request, tt.args...)
			if code == 0 {
				t.Errorf("exit status 0, want non-zero")
			}
			if !strings.Contains(stdout, `"id":1`) || !strings.Contains(stdout, `"error"`) || !strings.Contains(stdout, tt.why) {
				t.Errorf("the AI app got %q, want an error saying %q", stdout, tt.why)
			}
			if !strings.Contains(stderr, "countersign-bridge:") {
				t.Errorf("stderr %q says nothing", stderr)
			}
		})
	}
}

func TestBridgeUsageExitsNonZero(t *testing.T) {
	if _, _, code := runBridge(t, ""); code != 2 {
		t.Fatalf("exit status %d, want 2", code)
	}
}
