package peeruid

import (
	"net"
	"os"
	"testing"
)

// A real loopback connection's client end is owned by this process's user.
func TestLookupFindsOwnUser(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			addr := "127.0.0.1:0"
			if network == "tcp6" {
				addr = "[::1]:0"
			}
			ln, err := net.Listen(network, addr)
			if err != nil {
				t.Skipf("no %s loopback: %v", network, err)
			}
			defer ln.Close()
			c, err := net.Dial(network, ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			s, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			uid, err := Lookup(s.LocalAddr().(*net.TCPAddr).AddrPort(), s.RemoteAddr().(*net.TCPAddr).AddrPort())
			if err != nil {
				t.Fatal(err)
			}
			if want := os.Getuid(); int(uid) != want {
				t.Fatalf("uid %d, want %d", uid, want)
			}
		})
	}
}
