package testenv

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"testing"
)

// TestOnlyTestsImportTestenv keeps this package out of what ships: no
// package's own (non-test) code may depend on it, directly or through
// another package.
func TestOnlyTestsImportTestenv(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list over the module")
	}
	const module = "github.com/countersign/countersign"
	const self = module + "/internal/testenv"
	out, err := exec.Command("go", "list", "-e", "-json=ImportPath,Deps", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	checked := 0
	for {
		var p struct {
			ImportPath string
			Deps       []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		checked++
		if p.ImportPath != self && slices.Contains(p.Deps, self) {
			t.Errorf("%s depends on %s: only tests may use it", p.ImportPath, self)
		}
	}
	if checked < 5 {
		t.Fatalf("go list reported only %d packages", checked)
	}
}

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
