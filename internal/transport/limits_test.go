package transport

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/jsonrpc"
)

// testMax is the limit on a server's messages in these tests.
const testMax = 4 << 10

// hugeResult is a result just over testMax.
func hugeResult() string {
	return `{"content":[{"type":"text","text":"` + strings.Repeat("x", testMax) + `"}]}`
}

// runHugeChild answers request 1 with a line over the limit, every other
// request normally, and, on request "noid", writes a line over the limit
// whose start names no id.
func runHugeChild() {
	sc := bufio.NewScanner(os.Stdin)
	w := bufio.NewWriter(os.Stdout)
	for sc.Scan() {
		m, err := jsonrpc.Parse(sc.Bytes())
		if err != nil || m.Kind != jsonrpc.KindRequest {
			continue
		}
		switch string(m.ID) {
		case "1":
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":1,"result":%s}`+"\n", hugeResult())
		case `"noid"`:
			// Beyond the start a long line is kept by.
			fmt.Fprintf(w, `{"jsonrpc":"2.0","result":"%s","id":"noid"}`+"\n", strings.Repeat("z", 2*keptOfLongLine))
		default:
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{}}`+"\n", m.ID)
		}
		w.Flush()
	}
}

// next returns the next message from c, failing after testTimeout.
func nextIncoming(t *testing.T, c Conn) Incoming {
	t.Helper()
	select {
	case in := <-c.Incoming():
		return in
	case <-c.Done():
		t.Fatalf("connection ended: %v", c.Err())
	case <-time.After(testTimeout):
		t.Fatal("no message from the server")
	}
	return Incoming{}
}

// isTooLargeAnswer checks that raw is an error answer to id saying the
// server's answer was over the limit.
func isTooLargeAnswer(t *testing.T, raw []byte, id string) {
	t.Helper()
	m, err := jsonrpc.Parse(raw)
	if err != nil || m.Kind != jsonrpc.KindResponse || string(m.ID) != id || m.Error == nil || !bytes.Contains(m.Error, []byte("larger than Countersign's limit")) {
		t.Fatalf("got %.300s, want an error answer to %s about the limit", raw, id)
	}
}

func TestStdioAnswerOverTheLimitBecomesAnError(t *testing.T) {
	s := startChild(t, "huge", testMax)
	ctx := context.Background()
	if err := s.Send(ctx, []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"big"}}`), nil); err != nil {
		t.Fatal(err)
	}
	isTooLargeAnswer(t, nextIncoming(t, s).Raw, "1")
	// The connection goes on.
	if err := s.Send(ctx, []byte(`{"jsonrpc":"2.0","id":2,"method":"ping"}`), nil); err != nil {
		t.Fatal(err)
	}
	if in := nextIncoming(t, s); string(in.Raw) != `{"jsonrpc":"2.0","id":2,"result":{}}` {
		t.Fatalf("after the large answer: %s", in.Raw)
	}
	// A message over the limit whose start names no id ends the
	// connection: nobody could be told otherwise.
	if err := s.Send(ctx, []byte(`{"jsonrpc":"2.0","id":"noid","method":"ping"}`), nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case in := <-s.Incoming():
		t.Fatalf("got %.200s, want the connection to end", in.Raw)
	case <-time.After(testTimeout):
		t.Fatal("the connection went on")
	}
	if s.Err() != ErrMessageTooLarge {
		t.Fatalf("ended with %v, want ErrMessageTooLarge", s.Err())
	}
}

func TestHTTPAnswerOverTheLimitBecomesAnError(t *testing.T) {
	for _, mode := range []string{"json", "sse"} {
		t.Run(mode, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				answer := `{"jsonrpc":"2.0","id":7,"result":` + hugeResult() + `}`
				if mode == "json" {
					w.Header().Set("Content-Type", "application/json")
					io.WriteString(w, answer)
					return
				}
				w.Header().Set("Content-Type", "text/event-stream")
				WriteEvent(w, "", "", []byte(answer))
			}))
			defer srv.Close()
			c := NewStreamableHTTP(HTTPOptions{URL: srv.URL, MaxMessage: testMax})
			defer c.Close()
			if err := c.Send(context.Background(), []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"big"}}`), nil); err != nil {
				t.Fatal(err)
			}
			isTooLargeAnswer(t, nextIncoming(t, c).Raw, "7")
		})
	}
}

func TestSSEEventOfManyLinesIsBounded(t *testing.T) {
	var b bytes.Buffer
	line := "data: " + strings.Repeat("y", 1<<10) + "\n"
	for range testMax>>10 + 1 {
		b.WriteString(line)
	}
	b.WriteString("\n")
	if _, err := newEventReader(&b, testMax).Next(); err != ErrMessageTooLarge {
		t.Fatalf("Next: %v, want ErrMessageTooLarge", err)
	}
}

func TestAServerThatNeverBeginsToAnswerANotificationIsLeft(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer srv.Close()
	defer close(release)
	c := NewStreamableHTTP(HTTPOptions{URL: srv.URL, HeaderTimeout: 100 * time.Millisecond})
	defer c.Close()
	done := make(chan error, 1)
	go func() {
		done <- c.Send(context.Background(), []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`), nil)
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "did not begin to answer") {
			t.Fatalf("Send: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Send still waits for a server that never answers")
	}
}

func TestARequestsSendEndsWithItsContext(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer srv.Close()
	defer close(release)
	c := NewStreamableHTTP(HTTPOptions{URL: srv.URL})
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.Send(ctx, []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}`), nil)
	}()
	time.Sleep(50 * time.Millisecond) // let it be sent; the test holds either way
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Send succeeded")
		}
	case <-time.After(testTimeout):
		t.Fatal("Send still waits after its context ended")
	}
}

func TestLeadingID(t *testing.T) {
	for in, want := range map[string]string{
		`{"jsonrpc":"2.0","id":12,"result":{"a":"xx`: "12",
		`{"id":"a\"b","result"`:                      `"a\"b"`,
		`{"jsonrpc":"2.0","result":{"id":3},"id":4}`: "4",
		`{"jsonrpc":"2.0","result":{"id":3},"id":`:   "",
		`{"jsonrpc":"2.0","id":null,"result":{}}`:    "",
		`{"jsonrpc":"2.0","id":{"x":1},"result":{}}`: "",
		`["id",1]`: "",
		`{"jsonrpc":"2.0","method":"x","params":{"id"`: "",
	} {
		id, ok := leadingID([]byte(in))
		if got := string(id); got != want || ok != (want != "") {
			t.Errorf("leadingID(%s) = %s, %v; want %s", in, got, ok, want)
		}
	}
}
