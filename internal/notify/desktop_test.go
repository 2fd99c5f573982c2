//go:build linux

package notify

import (
	"os"
	"testing"
	"time"

	"github.com/countersign/countersign/assets"
	"github.com/godbus/dbus/v5"
)

// notificationServer is a stand-in org.freedesktop.Notifications daemon on
// the real session bus.
type notificationServer struct {
	got chan []any
}

func (s *notificationServer) Notify(app string, replaces uint32, icon, summary, body string, actions []string, hints map[string]dbus.Variant, timeout int32) (uint32, *dbus.Error) {
	_, hasImage := hints["image-data"]
	s.got <- []any{app, summary, body, hasImage}
	return 1, nil
}

func (s *notificationServer) GetCapabilities() ([]string, *dbus.Error) {
	return []string{"body"}, nil
}

// TestDesktopNotifyReachesTheSessionBus sends a notification through beeep
// to a notification server on the session bus. It needs a session bus
// (scripts/test runs the tests inside dbus-run-session) where nothing else
// owns org.freedesktop.Notifications yet.
func TestDesktopNotifyReachesTheSessionBus(t *testing.T) {
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CI has no session bus: run the tests inside dbus-run-session")
		}
		t.Skip("no session bus")
	}
	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		t.Fatalf("connecting to the session bus: %v", err)
	}
	defer conn.Close()
	srv := &notificationServer{got: make(chan []any, 1)}
	if err := conn.Export(srv, "/org/freedesktop/Notifications", "org.freedesktop.Notifications"); err != nil {
		t.Fatal(err)
	}
	reply, err := conn.RequestName("org.freedesktop.Notifications", dbus.NameFlagDoNotQueue)
	if err != nil {
		t.Fatal(err)
	}
	if reply != dbus.RequestNameReplyPrimaryOwner {
		t.Skip("a notification daemon already runs on this bus")
	}

	d := NewDesktop("Countersign", assets.Tray)
	start := time.Now()
	if err := d.Notify("Review a tool call", "GitHub wants to run create_issue on DEFRA/ffc-pay"); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	t.Logf("Notify took %v", time.Since(start))
	select {
	case got := <-srv.got:
		want := []any{"Countersign", "Review a tool call", "GitHub wants to run create_issue on DEFRA/ffc-pay", true}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("the server got %v, want %v", got, want)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no notification reached the session bus")
	}
}
