// Package testenv is what the tests that run real programs share: where
// scripts/test installed the npm peers, a free loopback port, starting the
// reference MCP server and waiting for a program to listen, and a buffer
// for a program's output that a test reads while the program writes it.
//
// Only tests import it; TestOnlyTestsImportTestenv in internal/app fails
// if product code does.
package testenv

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// PeersDir is the folder where scripts/test installed the npm peers
// (COUNTERSIGN_PEERS), or "" when that is not set. Under CI (CI set) an
// unset one fails the test instead: suite names what CI must run against
// the peers.
func PeersDir(t testing.TB, suite string) string {
	t.Helper()
	dir := os.Getenv("COUNTERSIGN_PEERS")
	if dir == "" && os.Getenv("CI") != "" {
		t.Fatalf("COUNTERSIGN_PEERS is not set: CI must run %s (scripts/test sets it)", suite)
	}
	return dir
}

// NeedPeers is PeersDir for a test that cannot run without the peers: it
// skips the test when they are not installed (and fails it under CI).
func NeedPeers(t testing.TB, suite string) string {
	t.Helper()
	dir := PeersDir(t, suite)
	if dir == "" {
		t.Skip("real npm peers not installed: run scripts/test")
	}
	return dir
}

// EverythingJS is the entry point of server-everything, the reference MCP
// server, among the peers in dir.
func EverythingJS(dir string) string {
	return filepath.Join(dir, "node_modules/@modelcontextprotocol/server-everything/dist/index.js")
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on just now.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// WaitListening polls until something listens on 127.0.0.1:port. When
// nothing does within 30 s it fails the test with what (the program's
// name) and log (what the program wrote).
func WaitListening(t testing.TB, port int, what string, log fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not start: %s", what, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// StartEverything runs server-everything from the peers in dir in an HTTP
// mode ("streamableHttp" or "sse") on a free loopback port, and returns the
// port once it listens. The test's end kills it, as does the test
// process's.
func StartEverything(t testing.TB, dir, mode string) int {
	t.Helper()
	port := FreePort(t)
	cmd := exec.Command("node", "--require", filepath.Join(dir, "loopback.cjs"), EverythingJS(dir), mode)
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port))
	DieWithTest(cmd, syscall.SIGKILL)
	var stderr LockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	WaitListening(t, port, "server-everything "+mode, &stderr)
	return port
}

// LockedBuffer is a program's output (or a log) that a test reads while
// the program writes it.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write adds p to the buffer.
func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was written so far.
func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// KeepCalling runs call over and over in the background, as a well-behaved
// client does while a test attacks the server, until the returned stop is
// called. stop returns how long each call took, or the first error (which
// ended the calling).
func KeepCalling(call func() (time.Duration, error)) (stop func() ([]time.Duration, error)) {
	quit := make(chan struct{})
	done := make(chan error, 1)
	var took []time.Duration
	go func() {
		for {
			select {
			case <-quit:
				done <- nil
				return
			default:
			}
			d, err := call()
			if err != nil {
				done <- err
				return
			}
			took = append(took, d)
		}
	}()
	return func() ([]time.Duration, error) {
		close(quit)
		err := <-done
		return took, err
	}
}
