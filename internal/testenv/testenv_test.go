package testenv

import (
	"io"
	"net"
	"strconv"
	"testing"
)

func TestWaitListening(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	WaitListening(t, ln.Addr().(*net.TCPAddr).Port, "the listener", &LockedBuffer{})
}

func TestFreePortIsFree(t *testing.T) {
	port := FreePort(t)
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("FreePort gave %d, which cannot be listened on: %v", port, err)
	}
	ln.Close()
}

func TestLockedBuffer(t *testing.T) {
	var b LockedBuffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 100 {
			io.WriteString(&b, "x")
		}
	}()
	for range 100 {
		_ = b.String()
	}
	<-done
	if got := b.String(); len(got) != 100 {
		t.Fatalf("got %d bytes, want 100", len(got))
	}
}
