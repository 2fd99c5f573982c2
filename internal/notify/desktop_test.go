//go:build linux

package notify

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/assets"
	"github.com/godbus/dbus/v5"
)

// notificationServer is a stand-in org.freedesktop.Notifications daemon on
// the real session bus.
type notificationServer struct {
	got    chan []any
	closed chan uint32
	last   uint32
}

func (s *notificationServer) Notify(app string, replaces uint32, icon, summary, body string, actions []string, hints map[string]dbus.Variant, timeout int32) (uint32, *dbus.Error) {
	_, hasImage := hints["image-data"]
	id := replaces
	if id == 0 {
		s.last++
		id = s.last
	}
	s.got <- []any{app, summary, body, hasImage, replaces, strings.Join(actions, ",")}
	return id, nil
}

func (s *notificationServer) CloseNotification(id uint32) *dbus.Error {
	s.closed <- id
	return nil
}

func (s *notificationServer) GetCapabilities() ([]string, *dbus.Error) {
	return []string{"body"}, nil
}

// TestDesktopNotifyReachesTheSessionBus sends a notification through beeep
// to a notification server on the session bus. It needs a session bus
// (scripts/test runs the tests inside dbus-run-session) where nothing else
// owns org.freedesktop.Notifications yet.
func TestDesktopNotifyReachesTheSessionBus(t *testing.T) {
	_, srv := serveNotifications(t)
	d := NewDesktop("Countersign", assets.Tray)
	start := time.Now()
	if err := d.Notify("Review a tool call", "GitHub wants to create issue in DEFRA/ffc-pay"); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	t.Logf("Notify took %v", time.Since(start))
	select {
	case got := <-srv.got:
		want := []any{"Countersign", "Review a tool call", "GitHub wants to create issue in DEFRA/ffc-pay", true}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("the server got %v, want %v", got, want)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no notification reached the session bus")
	}
}

// TestDesktopPostOpensReplacesAndWithdraws posts a notification with a
// default action, clicks it (the daemon emits ActionInvoked), replaces it
// and withdraws it (CloseNotification).
func TestDesktopPostOpensReplacesAndWithdraws(t *testing.T) {
	conn, srv := serveNotifications(t)
	d := NewDesktop("Countersign", assets.Tray)
	opened := make(chan struct{}, 1)
	id, err := d.Post(0, "Review a tool call", "GitHub wants to create issue in DEFRA/ffc-pay", func() { opened <- struct{}{} })
	if err != nil {
		t.Fatalf("Post: %v", err)
	}
	got := receive(t, srv.got)
	want := []any{"Countersign", "Review a tool call", "GitHub wants to create issue in DEFRA/ffc-pay", true, uint32(0), "default,Review"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("the server got %v, want %v", got, want)
		}
	}
	// A click on another notification opens nothing; one on ours opens the review.
	for _, clicked := range []uint32{id + 100, id} {
		if err := conn.Emit("/org/freedesktop/Notifications", "org.freedesktop.Notifications.ActionInvoked", clicked, "default"); err != nil {
			t.Fatal(err)
		}
	}
	receive(t, opened)
	select {
	case <-opened:
		t.Fatal("opened twice")
	case <-time.After(100 * time.Millisecond):
	}

	id2, err := d.Post(id, "2 calls waiting", "GitHub wants to fork. Review it in Countersign.", nil)
	if err != nil {
		t.Fatalf("Post: %v", err)
	}
	if got := receive(t, srv.got); got[4] != id || id2 != id {
		t.Fatalf("replacing %d: the server got replaces=%v and gave %d", id, got[4], id2)
	}
	if err := d.Withdraw(id2); err != nil {
		t.Fatalf("Withdraw: %v", err)
	}
	if closed := receive(t, srv.closed); closed != id2 {
		t.Fatalf("closed %d, want %d", closed, id2)
	}
}

func receive[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("nothing reached the session bus")
	}
	panic("unreachable")
}

// serveNotifications owns org.freedesktop.Notifications on the session
// bus for the test, or skips it where there is no bus (fails in CI).
func serveNotifications(t *testing.T) (*dbus.Conn, *notificationServer) {
	t.Helper()
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
	t.Cleanup(func() { conn.Close() })
	srv := &notificationServer{got: make(chan []any, 4), closed: make(chan uint32, 4)}
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
	return conn, srv
}
