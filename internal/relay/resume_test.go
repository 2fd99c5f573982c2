package relay

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/transport"
)

// get opens a GET stream with the token and the given extra headers.
func (e *env) get(ctx context.Context, server, sid string, extra ...string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.url(server), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

// readExactly reads len(want) bytes of an event stream and checks them.
func readExactly(t *testing.T, r io.Reader, want string) {
	t.Helper()
	got := make([]byte, len(want))
	done := make(chan error, 1)
	go func() {
		_, err := io.ReadFull(r, got)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil || string(got) != want {
			t.Fatalf("host read %q (%v), want %q", got, err, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("host waited for %q", want)
	}
}

// letGo gives the relay a moment to see the host's connection end. The
// tests pass without it too (an answer written to a dead connection is
// still kept for a resume); with it they cover a stream left detached.
func letGo() { time.Sleep(100 * time.Millisecond) }

// TestHostResumesAPostStream: a 2025-11-25 host's POST stream starts with
// a priming event, its events carry ids, and when the host's connection
// drops before the answer, a GET with Last-Event-ID brings the events it
// missed, byte for byte, and then the answer that came while it was gone.
func TestHostResumesAPostStream(t *testing.T) {
	srv, conns := pipeServer("pipe")
	e := newEnv(t, []Server{srv}, func(o *Options) { o.KeepAlive = time.Hour })
	sid, up := pipeSession(t, e, conns) // the initialize POST is stream 1
	const version = "2025-11-25"

	ctx, cancel := context.WithCancel(context.Background())
	resp := e.post(ctx, "pipe", sid, `{"jsonrpc":"2.0","id":"r1","method":"prompts/get","params":{"name":"p","_meta":{"progressToken":"t"}}}`,
		"Mcp-Protocol-Version", version)
	if got := string(up.next(t)); got != `{"jsonrpc":"2.0","id":2,"method":"prompts/get","params":{"name":"p","_meta":{"progressToken":"t"}}}` {
		t.Fatalf("upstream got %s", got)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("POST answered %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	body := bufio.NewReader(resp.Body)
	readExactly(t, body, "id: 2-1\ndata: \n\n")
	const progress = `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"t","progress":1}}`
	up.in <- transport.Incoming{Raw: []byte(progress), RelatedTo: []byte("2")}
	readExactly(t, body, "id: 2-2\nevent: message\ndata: "+progress+"\n\n")

	// The connection drops; the answer comes while the host is away.
	cancel()
	resp.Body.Close()
	letGo()
	up.in <- transport.Incoming{Raw: []byte(`{"jsonrpc":"2.0","id":2,"result":{"messages":[]}}`), RelatedTo: []byte("2")}

	resumed := e.get(context.Background(), "pipe", sid, "Last-Event-ID", "2-2", "Mcp-Protocol-Version", version)
	got, _ := io.ReadAll(resumed.Body)
	resumed.Body.Close()
	want := "id: 2-3\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":\"r1\",\"result\":{\"messages\":[]}}\n\n"
	if resumed.StatusCode != http.StatusOK || resumed.Header.Get("Content-Type") != "text/event-stream" || string(got) != want {
		t.Fatalf("resume answered %d %q:\n%q\nwant\n%q", resumed.StatusCode, resumed.Header.Get("Content-Type"), got, want)
	}

	// From the priming event: everything since, again.
	again := e.get(context.Background(), "pipe", sid, "Last-Event-ID", "2-1")
	got, _ = io.ReadAll(again.Body)
	again.Body.Close()
	if want := "id: 2-2\nevent: message\ndata: " + progress + "\n\n" + want; string(got) != want {
		t.Fatalf("second resume:\n%q\nwant\n%q", got, want)
	}
	// After the last event of a finished stream: 204, which tells an
	// event-stream client to stop reconnecting.
	last := e.get(context.Background(), "pipe", sid, "Last-Event-ID", "2-3")
	got, _ = io.ReadAll(last.Body)
	last.Body.Close()
	if last.StatusCode != http.StatusNoContent || len(got) != 0 {
		t.Errorf("resuming a finished stream after its end: %d %q, want 204", last.StatusCode, got)
	}
	select {
	case m := <-up.sent:
		t.Errorf("resuming sent %s upstream", m)
	default:
	}
}

// TestHostResumesTheGetStream: the GET stream's events carry ids; after a
// drop, a GET with Last-Event-ID gets what the server sent meanwhile.
func TestHostResumesTheGetStream(t *testing.T) {
	srv, conns := pipeServer("pipe")
	e := newEnv(t, []Server{srv}, func(o *Options) { o.KeepAlive = time.Hour })
	sid, up := pipeSession(t, e, conns)

	ctx, cancel := context.WithCancel(context.Background())
	resp := e.get(ctx, "pipe", sid, "Mcp-Protocol-Version", "2025-11-25")
	body := bufio.NewReader(resp.Body)
	readExactly(t, body, "id: 2-1\ndata: \n\n")
	const first = `{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}`
	up.in <- transport.Incoming{Raw: []byte(first)}
	readExactly(t, body, "id: 2-2\nevent: message\ndata: "+first+"\n\n")
	cancel()
	resp.Body.Close()
	letGo()
	const second = `{"jsonrpc":"2.0","method":"notifications/resources/list_changed"}`
	up.in <- transport.Incoming{Raw: []byte(second)}

	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	resumed := e.get(ctx2, "pipe", sid, "Last-Event-ID", "2-1", "Mcp-Protocol-Version", "2025-11-25")
	defer resumed.Body.Close()
	readExactly(t, bufio.NewReader(resumed.Body),
		"id: 2-2\nevent: message\ndata: "+first+"\n\n"+"id: 2-3\nevent: message\ndata: "+second+"\n\n")
}

// TestOlderHostsGetIdsWithoutPriming: before 2025-11-25 a client may not
// expect an event without data: ids, but no priming event. A sessionless
// (2026-07-28) stream is not resumable and carries no ids.
func TestOlderHostsGetIdsWithoutPriming(t *testing.T) {
	srv, conns := pipeServer("pipe")
	e := newEnv(t, []Server{srv}, func(o *Options) { o.KeepAlive = time.Hour })
	sid, up := pipeSession(t, e, conns)
	resp := e.post(context.Background(), "pipe", sid, `{"jsonrpc":"2.0","id":5,"method":"tools/list"}`, "Mcp-Protocol-Version", "2025-06-18")
	up.next(t)
	time.Sleep(2 * headerDelay) // let the stream start: no quick JSON answer
	up.in <- transport.Incoming{Raw: []byte(`{"jsonrpc":"2.0","id":2,"result":{"tools":[]}}`), RelatedTo: []byte("2")}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := "id: 2-1\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{\"tools\":[]}}\n\n"; string(got) != want {
		t.Errorf("2025-06-18 host got %q, want %q", got, want)
	}

	answer := make(chan *http.Response, 1)
	go func() {
		answer <- e.post(context.Background(), "pipe", "", `{"jsonrpc":"2.0","id":6,"method":"tools/list","params":{}}`, "Mcp-Protocol-Version", "2026-07-28")
	}()
	up2 := <-conns
	up2.next(t)
	const log = `{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"x"}}`
	up2.in <- transport.Incoming{Raw: []byte(log), RelatedTo: []byte("1")}
	up2.in <- transport.Incoming{Raw: []byte(`{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}`), RelatedTo: []byte("1")}
	sessionless := <-answer
	got, _ = io.ReadAll(sessionless.Body)
	sessionless.Body.Close()
	if want := "event: message\ndata: " + log + "\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":6,\"result\":{\"tools\":[]}}\n\n"; string(got) != want {
		t.Errorf("2026-07-28 host got %q, want %q", got, want)
	}
}

// FuzzParseEventID: Last-Event-ID comes from the host; only ids the relay
// makes are read, and they read back the same.
func FuzzParseEventID(f *testing.F) {
	for _, s := range []string{"2-1", "0-0", "1-", "-1", "01-2", "2-+3", "9999999999999999999999-1", "3-4-5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		num, seq, ok := parseEventID(id)
		if !ok {
			return
		}
		if got := (&stream{num: num}).eventID(seq); got != id {
			t.Fatalf("parseEventID(%q) = %d, %d, which makes %q", id, num, seq, got)
		}
	})
}
