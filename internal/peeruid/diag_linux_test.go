package peeruid

import (
	"bufio"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// When run as the client of TestSockDiagFindsAnotherUser, the test binary
// connects to the address it is given and waits for stdin to close.
func init() {
	addr := os.Getenv("PEERUID_TEST_CONNECT")
	if addr == "" {
		return
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		os.Exit(2)
	}
	bufio.NewReader(os.Stdin).ReadByte()
	c.Close()
	os.Exit(0)
}

// The kernel's answer names the user of the client end: another user's
// connection is theirs, as the socket table says too. (Run as root, which
// can start a client as another user.)
func TestSockDiagFindsAnotherUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("starting a client as another user needs root")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const nobody = 65534
	// A copy of the test binary the other user can run.
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	exe, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	client := filepath.Join(dir, "client")
	if err := os.WriteFile(client, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(client, "-test.run=^$")
	cmd.Env = append(os.Environ(), "PEERUID_TEST_CONNECT="+ln.Addr().String())
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start a client as another user: %v", err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	local, remote := s.LocalAddr().(*net.TCPAddr).AddrPort(), s.RemoteAddr().(*net.TCPAddr).AddrPort()
	uid, err := diagLookup(remote, local)
	if errors.Is(err, errDiag) {
		t.Skipf("sock_diag cannot be asked here: %v", err)
	}
	if err != nil || uid != nobody {
		t.Fatalf("sock_diag: uid %d, %v; want %d", uid, err, nobody)
	}
	if uid, err := scanLookup(local, remote); err != nil || uid != nobody {
		t.Fatalf("socket table: uid %d, %v; want %d", uid, err, nobody)
	}
	// A connection that does not exist is not found.
	gone := netip.AddrPortFrom(remote.Addr(), 1)
	if _, err := diagLookup(gone, local); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a connection that does not exist: %v, want ErrNotFound", err)
	}
}
