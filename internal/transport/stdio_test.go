package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"testing"
)

// startChild starts this test binary as a stdio server in the given mode.
func startChild(t *testing.T, mode string, maxMessage ...int) *Stdio {
	t.Helper()
	s, err := StartStdio(context.Background(), StdioOptions{
		MaxMessage: append(maxMessage, 0)[0],
		Command:    os.Args[0],
		// Under -race, a child would otherwise wait a second before exiting.
		Env: []string{childEnv + "=" + mode, "GORACE=" + os.Getenv("GORACE") + " atexit_sleep_ms=0"},
	})
	if err != nil {
		t.Fatalf("StartStdio: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStdioSession(t *testing.T) {
	s := startChild(t, "mcp")
	if v := initialize(t, s, "2025-06-18"); v != "2025-06-18" {
		t.Errorf("server chose protocol version %q, want 2025-06-18", v)
	}
	echoRoundTrip(t, s, "2")
	echoRoundTrip(t, s, `"three"`)
}

func TestStdioSendsMultiLineMessagesAsOneLine(t *testing.T) {
	s := startChild(t, "mcp")
	initialize(t, s, "2025-06-18")
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, callTool("7", "echo", map[string]any{"message": "a\nb"}), "", "\r\n  "); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), pretty.Bytes(), nil); err != nil {
		t.Fatal(err)
	}
	_, m := recvResponse(t, s, "7")
	if got := toolText(t, m.Result); got != "a\nb" {
		t.Errorf("echo answered %q, want %q", got, "a\nb")
	}
}

func TestStdioSendLeavesTheCallersBufferAlone(t *testing.T) {
	s := startChild(t, "raw")
	recv(t, s) // the raw child's first notification
	msg := []byte(`{"jsonrpc":"2.0","id":4,"method":"ping"}`)
	buf := make([]byte, len(msg), len(msg)+8)
	copy(buf, msg)
	spare := buf[len(msg):cap(buf)]
	for i := range spare {
		spare[i] = 'x'
	}
	if err := s.Send(context.Background(), buf, nil); err != nil {
		t.Fatal(err)
	}
	recvResponse(t, s, "4")
	if string(spare) != "xxxxxxxx" {
		t.Errorf("Send wrote %q into the spare capacity of the caller's buffer", spare)
	}
}

func TestStdioKeepsBytesExact(t *testing.T) {
	s := startChild(t, "raw")
	in := recv(t, s)
	if string(in.Raw) != rawNotification {
		t.Errorf("notification arrived as\n%s\nwant\n%s", in.Raw, rawNotification)
	}
	if in.RelatedTo != nil {
		t.Errorf("RelatedTo = %s, want nil on stdio", in.RelatedTo)
	}
	const id = `12345678901234567890`
	if err := s.Send(context.Background(), []byte(`{"jsonrpc":"2.0","id":`+id+`,"method":"tools/list"}`), nil); err != nil {
		t.Fatal(err)
	}
	in = recv(t, s)
	if want := `{"jsonrpc":"2.0","id":` + id + `,"result":` + rawResult + `}`; string(in.Raw) != want {
		t.Errorf("answer arrived as\n%s\nwant\n%s", in.Raw, want)
	}
}

func TestStdioCloseStopsTheChild(t *testing.T) {
	tests := []struct {
		name string
		mode string
	}{
		{name: "a server that exits when its input ends", mode: "mcp"},
		{name: "a server that ignores the end of its input is killed", mode: "stubborn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startChild(t, tt.mode)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			waitDone(t, s)
			if !errors.Is(s.Err(), ErrClosed) {
				t.Errorf("Err() = %v, want ErrClosed", s.Err())
			}
			if s.cmd.ProcessState == nil {
				t.Error("Close returned before the child was reaped")
			}
			if err := s.Send(context.Background(), []byte(initializedNotification), nil); !errors.Is(err, ErrClosed) {
				t.Errorf("Send after Close = %v, want ErrClosed", err)
			}
		})
	}
}

func TestStdioChildExit(t *testing.T) {
	s := startChild(t, "exit")
	waitDone(t, s)
	var exit *exec.ExitError
	if !errors.As(s.Err(), &exit) || exit.ExitCode() != 3 {
		t.Errorf("Err() = %v, want the child's exit status 3", s.Err())
	}
	if err := s.Send(context.Background(), []byte(initializedNotification), nil); err == nil || !errors.As(err, &exit) {
		t.Errorf("Send after the exit = %v, want the exit error", err)
	}
}

func TestStartStdioErrors(t *testing.T) {
	tests := []struct {
		name string
		o    StdioOptions
	}{
		{name: "no command", o: StdioOptions{}},
		{name: "a command that does not exist", o: StdioOptions{Command: "/nonexistent/countersign-test-server"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := StartStdio(context.Background(), tt.o)
			if err == nil {
				s.Close()
				t.Fatal("StartStdio succeeded")
			}
		})
	}
}
