package smoke

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/testenv"
)

// TestBridgeStartsTheApp: with Countersign stopped, an AI app starts
// countersign-bridge; the bridge starts the app beside it, waits for it,
// reads the local token the app has just created, and the AI app's
// initialize and tools/list go through. Then the app the bridge started
// answers on loopback: 401 without the token, the server's answer with the
// token `countersign token` prints.
//
// With COUNTERSIGN_INSTALLED=DIR it tests the binaries installed in DIR
// (scripts/test-deb sets /usr/bin) instead of building them.
func TestBridgeStartsTheApp(t *testing.T) {
	if os.Getenv("COUNTERSIGN_SMOKE") != "1" {
		t.Skip("set COUNTERSIGN_SMOKE=1 to run the end-to-end test of the real app on Xvfb")
	}
	peers := needTools(t)
	outDir := "out-bridge"
	if os.Getenv("COUNTERSIGN_INSTALLED") != "" {
		outDir = "out-installed"
	}
	s := newSession(t, peers, outDir)
	app, bridgeBin := s.binaries()
	upstream := s.startUpstream()
	port := testenv.FreePort(t)
	cfg := filepath.Join(s.dir, "settings.json")
	write(t, cfg, fmt.Sprintf(`{"port": %d, "servers": [
  {"id": "everything", "name": "Everything", "transport": "streamable-http", "url": "http://127.0.0.1:%d/mcp"}
]}`, port, upstream))
	if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
		c.Close()
		t.Fatalf("something already listens on port %d", port)
	}
	t.Cleanup(func() { s.stopStarted(app) })

	// The AI app's side: a stdio server process, as Claude Desktop starts it.
	bridge := exec.Command(bridgeBin, "-config", cfg, "everything")
	bridge.Env = s.env
	stdin, _ := bridge.StdinPipe()
	stdout, _ := bridge.StdoutPipe()
	var stderr bytes.Buffer
	bridge.Stderr = &stderr
	if err := bridge.Start(); err != nil {
		t.Fatal(err)
	}
	defer bridge.Process.Kill()
	answers := make(chan map[string]json.RawMessage, 10)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var m map[string]json.RawMessage
			if json.Unmarshal(sc.Bytes(), &m) == nil && m["id"] != nil {
				answers <- m
			}
		}
		close(answers)
	}()
	next := func(what string) map[string]json.RawMessage {
		t.Helper()
		select {
		case m, ok := <-answers:
			if !ok {
				t.Fatalf("the bridge closed stdout before answering %s; its stderr:\n%s", what, stderr.String())
			}
			return m
		case <-time.After(90 * time.Second):
			t.Fatalf("no answer to %s; the bridge's stderr:\n%s", what, stderr.String())
		}
		return nil
	}
	io.WriteString(stdin, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"smoke","version":"1"}}}`+"\n")
	if m := next("initialize"); m["result"] == nil || !bytes.Contains(m["result"], []byte("serverInfo")) {
		t.Fatalf("initialize: %s %s; the bridge's stderr:\n%s", m["result"], m["error"], stderr.String())
	}
	io.WriteString(stdin, `{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n")
	io.WriteString(stdin, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`+"\n")
	if m := next("tools/list"); !bytes.Contains(m["result"], []byte(`"echo"`)) {
		t.Fatalf("tools/list: %s %s", m["result"], m["error"])
	}
	stdin.Close()
	done := make(chan error, 1)
	go func() { done <- bridge.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the bridge exited with %v; its stderr:\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Error("the bridge did not exit after its stdin closed")
	}
	if !strings.Contains(stderr.String(), "starting it") {
		t.Errorf("the bridge did not say it started the app; its stderr:\n%s", stderr.String())
	}
	write(t, filepath.Join(s.out, "bridge.log"), stderr.String())

	// The app the bridge started outlives it and guards its endpoint.
	url := fmt.Sprintf("http://127.0.0.1:%d/servers/everything/mcp", port)
	if code := post(t, url, ""); code != http.StatusUnauthorized {
		t.Errorf("initialize without the token: %d, want 401", code)
	}
	token := strings.TrimSpace(s.run(app, "token"))
	if code := post(t, url, token); code != http.StatusOK {
		t.Errorf("initialize with the token: %d, want 200", code)
	}
}

// binaries returns the app and the bridge: installed ones from
// COUNTERSIGN_INSTALLED, or built into one folder, as an installer puts
// them.
func (s *session) binaries() (app, bridge string) {
	s.t.Helper()
	if dir := os.Getenv("COUNTERSIGN_INSTALLED"); dir != "" {
		return filepath.Join(dir, "countersign"), filepath.Join(dir, "countersign-bridge")
	}
	app = s.build()
	bridge = filepath.Join(filepath.Dir(app), "countersign-bridge")
	cmd := exec.Command("go", "build", "-o", bridge, "github.com/countersign/countersign/cmd/countersign-bridge")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("building the bridge: %v\n%s", err, out)
	}
	return app, bridge
}

// stopStarted ends the copies of bin running in this session (started by
// the bridge, so not the test's children): those whose HOME is ours.
func (s *session) stopStarted(bin string) {
	home := "HOME=" + filepath.Join(s.dir, "home")
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		exe, err := os.Readlink(filepath.Join(p, "exe"))
		if err != nil || exe != bin {
			continue
		}
		env, _ := os.ReadFile(filepath.Join(p, "environ"))
		if !bytes.Contains(append([]byte{0}, env...), []byte("\x00"+home+"\x00")) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(p))
		syscall.Kill(pid, syscall.SIGTERM)
		for range 100 {
			if syscall.Kill(pid, 0) != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// post sends an initialize to url with the token (none when empty) and
// returns the status.
func post(t *testing.T, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"smoke","version":"1"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
