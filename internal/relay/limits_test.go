package relay

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/transport"
)

// rawRequest writes head on a new connection to the relay and reads the
// response, failing if none comes within the test's patience.
func (e *env) rawRequest(head string) *http.Response {
	e.t.Helper()
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(e.port))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, head); err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		e.t.Fatalf("no answer: %v", err)
	}
	return resp
}

func TestABodyOverTheLimitIsRefusedBeforeItIsRead(t *testing.T) {
	srv, _ := pipeServer("pipe")
	e := newEnv(t, []Server{srv})
	// Announces 100 MB and sends none of it: the refusal must not wait
	// for the body.
	resp := e.rawRequest("POST /servers/pipe/mcp HTTP/1.1\r\nHost: 127.0.0.1:" + strconv.Itoa(e.port) +
		"\r\nAuthorization: Bearer " + testToken + "\r\nContent-Type: application/json\r\nContent-Length: 104857600\r\n\r\n")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !bytes.Contains(body, []byte("up to 4 MB")) {
		t.Fatalf("status %d, %s; want 413 naming the limit", resp.StatusCode, body)
	}
}

func TestAChunkedBodyOverTheLimitIsRefused(t *testing.T) {
	srv, _ := pipeServer("pipe")
	e := newEnv(t, []Server{srv}, func(o *Options) { o.MaxMessage = 64 << 10 })
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":"` + strings.Repeat("a", 64<<10) + `"}}}`
	req, _ := http.NewRequest(http.MethodPost, e.url("pipe"), io.MultiReader(strings.NewReader(body))) // no length: chunked
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err) // the relay answers before it has read it all, and then reads on
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
}

func TestMessagesInFlightAreBoundedTogether(t *testing.T) {
	srv, conns := pipeServer("pipe")
	e := newEnv(t, []Server{srv}, func(o *Options) { o.MaxMessage = 4 << 10; o.MaxInFlight = 6 << 10 })
	e.setDecider(func(gate.Call) *gate.Decision { return nil }) // calls wait
	sid, up := pipeSession(t, e, conns)
	call := func(id int) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"text":"%s"}}}`, id, strings.Repeat("t", 3<<10))
	}
	first := make(chan *http.Response, 1)
	go func() { first <- e.post(context.Background(), "pipe", sid, call(1)) }()
	held := e.waitEvent(func(ev gate.Event) bool { return ev.Kind == gate.EventAdded })

	// A second large call does not fit beside the first: a clear error at
	// once, not a wait.
	resp := e.post(context.Background(), "pipe", sid, call(2))
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !bytes.Contains(body, []byte(`"error"`)) || !bytes.Contains(body, []byte("try again")) {
		t.Fatalf("second call: status %d, %s; want 503 with a JSON-RPC error", resp.StatusCode, body)
	}
	// A small request still fits.
	go func() {
		up.in <- incomingFor(t, up.next(t), `{}`)
	}()
	resp = e.post(context.Background(), "pipe", sid, `{"jsonrpc":"2.0","id":3,"method":"ping"}`)
	if msgs := readMessages(t, resp); len(msgs) != 1 || !bytes.Contains(msgs[0], []byte(`"result"`)) {
		t.Fatalf("ping beside the held call: %s", msgs)
	}
	// Once the first is decided, its bytes are free again.
	e.gate.Decide(held.Call.ID, gate.Decision{Approve: false})
	readMessages(t, <-first)
	for deadline := time.Now().Add(10 * time.Second); e.relay.inFlight.inUse() != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes still counted after every message was handled", e.relay.inFlight.inUse())
		}
	}
}

func TestAHugeBatchIsRefused(t *testing.T) {
	srv, conns := pipeServer("pipe")
	e := newEnv(t, []Server{srv})
	sid, _ := pipeSession(t, e, conns)
	var b strings.Builder
	b.WriteString("[")
	for i := range 10000 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"jsonrpc":"2.0","id":%d,"method":"ping"}`, i)
	}
	b.WriteString("]")
	resp := e.post(context.Background(), "pipe", sid, b.String())
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte("batches of up to")) {
		t.Fatalf("status %d, %s; want 400", resp.StatusCode, body)
	}
}

func TestAMessageMustBeJSON(t *testing.T) {
	srv, conns := pipeServer("pipe")
	e := newEnv(t, []Server{srv})
	sid, _ := pipeSession(t, e, conns)
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json-seq", "nonsense/"} {
		resp := e.post(context.Background(), "pipe", sid, `{"jsonrpc":"2.0","id":1,"method":"ping"}`, "Content-Type", ct)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Errorf("Content-Type %s: status %d, want 415", ct, resp.StatusCode)
		}
	}
}

// incomingFor is the upstream's answer to the request it got as sent.
func incomingFor(t *testing.T, sent []byte, result string) transport.Incoming {
	t.Helper()
	return transport.Incoming{Raw: []byte(`{"jsonrpc":"2.0","id":` + string(field(t, sent, "id")) + `,"result":` + result + `}`)}
}
