//go:build linux

package portal

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// fakeChooser stands in for the desktop portal's FileChooser on a private
// bus: it answers every SaveFile with the Response signal the test sets.
type fakeChooser struct {
	conn    *dbus.Conn
	code    uint32
	uris    []string
	asked   chan map[string]dbus.Variant
	handles string        // "own" answers at a path of its own, as portals before 0.9 did
	hang    chan struct{} // when set, SaveFile does not return until it closes
}

func (f *fakeChooser) SaveFile(sender dbus.Sender, parent, title string, opts map[string]dbus.Variant) (dbus.ObjectPath, *dbus.Error) {
	f.asked <- opts
	if f.hang != nil {
		<-f.hang
	}
	token, _ := opts["handle_token"].Value().(string)
	path := dbus.ObjectPath(object + "/request/" + strings.ReplaceAll(strings.TrimPrefix(string(sender), ":"), ".", "_") + "/" + token)
	if f.handles == "own" {
		path = object + "/request/elsewhere/1"
	}
	go func() {
		time.Sleep(20 * time.Millisecond) // the answer comes after the call returns
		f.conn.Emit(path, responded, f.code, map[string]dbus.Variant{"uris": dbus.MakeVariant(f.uris)})
	}()
	return path, nil
}

// privateBus starts a session bus of the test's own and returns a client
// connection to it and, if serve, the fake portal on it.
func privateBus(t *testing.T, f *fakeChooser) *dbus.Conn {
	t.Helper()
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		t.Skip("dbus-daemon is not installed (scripts/test installs dbus)")
	}
	// A bus with no services to start on demand: a portal installed on
	// the machine must not answer in place of the stand-in, or for none.
	conf := filepath.Join(t.TempDir(), "bus.conf")
	if err := os.WriteFile(conf, []byte(`<busconfig><type>session</type><listen>unix:tmpdir=`+os.TempDir()+`</listen>
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy></busconfig>`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("dbus-daemon", "--config-file="+conf, "--nofork", "--print-address")
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon gave no address: %v", err)
	}
	connect := func() *dbus.Conn {
		c, err := dbus.Connect(strings.TrimSpace(addr))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	if f != nil {
		f.conn = connect()
		f.asked = make(chan map[string]dbus.Variant, 1)
		if err := f.conn.Export(f, object, chooser); err != nil {
			t.Fatal(err)
		}
		if reply, err := f.conn.RequestName(service, dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
			t.Fatalf("claiming %s: %v %v", service, reply, err)
		}
	}
	return connect()
}

func TestSaveFile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	t.Run("the chosen file", func(t *testing.T) {
		f := &fakeChooser{uris: []string{"file:///home/sam/Audit%20exports/countersign.csv"}}
		path, err := saveFile(ctx, privateBus(t, f), "Export the audit log", "countersign-audit.csv")
		if err != nil || path != "/home/sam/Audit exports/countersign.csv" {
			t.Fatalf("SaveFile = %q, %v", path, err)
		}
		opts := <-f.asked
		if got := opts["current_name"].Value(); got != "countersign-audit.csv" {
			t.Errorf("proposed name %v", got)
		}
	})
	t.Run("a portal that answers at a path of its own", func(t *testing.T) {
		f := &fakeChooser{uris: []string{"file:///tmp/a.csv"}, handles: "own"}
		if path, err := saveFile(ctx, privateBus(t, f), "t", "a.csv"); err != nil || path != "/tmp/a.csv" {
			t.Fatalf("SaveFile = %q, %v", path, err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		f := &fakeChooser{code: 1}
		if path, err := saveFile(ctx, privateBus(t, f), "t", "a.csv"); err != nil || path != "" {
			t.Fatalf("SaveFile = %q, %v; want nothing chosen", path, err)
		}
	})
	t.Run("not a local file", func(t *testing.T) {
		f := &fakeChooser{uris: []string{"sftp://host/a.csv"}}
		if _, err := saveFile(ctx, privateBus(t, f), "t", "a.csv"); err == nil || errors.Is(err, ErrUnavailable) {
			t.Fatalf("SaveFile error %v, want a refusal of the remote file", err)
		}
	})
	t.Run("a portal that never answers the call is taken for none", func(t *testing.T) {
		defer func(d time.Duration) { callWait = d }(callWait)
		callWait = 200 * time.Millisecond
		f := &fakeChooser{hang: make(chan struct{})}
		defer close(f.hang)
		if _, err := saveFile(ctx, privateBus(t, f), "t", "a.csv"); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("SaveFile error %v, want ErrUnavailable", err)
		}
	})
	t.Run("no portal on the bus", func(t *testing.T) {
		if _, err := saveFile(ctx, privateBus(t, nil), "t", "a.csv"); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("SaveFile error %v, want ErrUnavailable", err)
		}
	})
}
