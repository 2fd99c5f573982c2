package app

import (
	"errors"
	"net"
	"testing"

	"github.com/countersign/countersign/internal/relay"
)

// TestAddrInUse holds the one-instance lock together: a second listen on a
// taken port must be recognised as "in use" (so a second launch brings the
// first forward), on every system, and other errors must not be.
func TestAddrInUse(t *testing.T) {
	first, err := relay.Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	port := first.Addr().(*net.TCPAddr).Port
	_, err = relay.Listen(port)
	if err == nil {
		t.Fatalf("a second listen on port %d succeeded", port)
	}
	if !addrInUse(err) {
		t.Errorf("addrInUse(%v) = false, want true", err)
	}
	for _, other := range []error{nil, errors.New("bind: something else"), net.ErrClosed} {
		if addrInUse(other) {
			t.Errorf("addrInUse(%v) = true, want false", other)
		}
	}
}
