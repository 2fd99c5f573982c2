package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/jsonrpc"
)

func TestErrorAnswer(t *testing.T) {
	const id = `7`
	cases := []struct {
		name, body, want string // want "" means not an answer
	}{
		{"same id", `{"jsonrpc":"2.0","id":7,"error":{"code":-32602,"message":"m","data":{"x":1}}}`, `{"jsonrpc":"2.0","id":7,"error":{"code":-32602,"message":"m","data":{"x":1}}}`},
		{"null id gets ours", `{"jsonrpc":"2.0","id":null,"error":{"code":-32601,"message":"m"}}`, `{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"m"}}`},
		{"no id gets ours", " \n{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32022,\"message\":\"m\"}}\n", " \n{\"id\":7,\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32022,\"message\":\"m\"}}\n"},
		{"other id", `{"jsonrpc":"2.0","id":8,"error":{"code":-32602,"message":"m"}}`, ""},
		{"string id is another id", `{"jsonrpc":"2.0","id":"7","error":{"code":-32602,"message":"m"}}`, ""},
		{"success", `{"jsonrpc":"2.0","id":7,"result":{}}`, ""},
		{"batch", `[{"jsonrpc":"2.0","id":7,"error":{"code":-32602,"message":"m"}}]`, ""},
		{"code not an integer", `{"jsonrpc":"2.0","id":7,"error":{"code":-32602.5,"message":"m"}}`, ""},
		{"code null", `{"jsonrpc":"2.0","id":7,"error":{"code":null,"message":"m"}}`, ""},
		{"no message", `{"jsonrpc":"2.0","id":7,"error":{"code":-32602}}`, ""},
		{"message by another case", `{"jsonrpc":"2.0","id":7,"error":{"code":-32602,"Message":"m"}}`, ""},
		{"error not an object", `{"jsonrpc":"2.0","id":7,"error":"m"}`, ""},
		{"two messages", "{\"jsonrpc\":\"2.0\",\"id\":7,\"error\":{\"code\":1,\"message\":\"m\"}}\n{\"jsonrpc\":\"2.0\",\"method\":\"x\"}", ""},
		{"empty object", `{}`, ""},
		{"not JSON", `Bad Request`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ErrorAnswer([]byte(tc.body), json.RawMessage(id)); string(got) != tc.want {
				t.Errorf("ErrorAnswer(%q) = %q, want %q", tc.body, got, tc.want)
			}
		})
	}
}

// FuzzErrorAnswer: whatever a server sends, an answer is one JSON-RPC error
// response under our id, and everything after the id is the server's.
func FuzzErrorAnswer(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":7,"error":{"code":-32602,"message":"m"}}`), []byte(`7`))
	f.Add([]byte(`{"jsonrpc":"2.0","error":{"code":1,"message":""}}`), []byte(`"a"`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":null,"error":{"code":1,"message":"m","data":null}}`), []byte(`1`))
	f.Fuzz(func(t *testing.T, body, id []byte) {
		if !json.Valid(id) || (len(id) == 0 || (id[0] != '"' && id[0] != '-' && (id[0] < '0' || id[0] > '9'))) {
			return
		}
		got := ErrorAnswer(body, id)
		if got == nil {
			return
		}
		m, err := jsonrpc.Parse(got)
		if err != nil || m.Kind != jsonrpc.KindResponse || m.Error == nil || !bytes.Equal(m.ID, id) {
			t.Fatalf("ErrorAnswer(%q, %s) = %q: not an error response to the id (%v)", body, id, got, err)
		}
		if !bytes.HasSuffix(body, got[bytes.Index(got, m.Error):]) {
			t.Fatalf("ErrorAnswer(%q) = %q changed bytes after the id", body, got)
		}
	})
}

// TestCancellingCarriesOnAsTheRevisionSays: a server we initialized
// (before 2026-07-28) gets notifications/cancelled, and the answer stream
// of the cancelled request closes; nobody is told "no answer".
func TestCancellingCarriesOnAsTheRevisionSays(t *testing.T) {
	closed := make(chan struct{})
	rec := newRecorder(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch {
		case bytes.Contains(body, []byte(`"initialize"`)):
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{},"serverInfo":{"name":"s","version":"1"}}}`)
		case bytes.Contains(body, []byte(`"slow"`)):
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			close(closed)
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	}))
	hs := httptest.NewServer(rec)
	defer hs.Close()
	c := NewStreamableHTTP(HTTPOptions{URL: hs.URL})
	defer c.Close()
	ctx := context.Background()
	if err := c.Send(ctx, []byte(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`), nil); err != nil {
		t.Fatal(err)
	}
	<-c.Incoming()
	if err := c.Send(ctx, []byte(`{"jsonrpc":"2.0","id":2,"method":"slow"}`), nil); err != nil {
		t.Fatal(err)
	}
	const cancel = `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":2}}`
	if err := c.Send(ctx, []byte(cancel), nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the cancelled request's stream stayed open")
	}
	var got []string
	for _, r := range rec.requests() {
		got = append(got, r.Method+" "+string(r.Body))
	}
	if len(got) != 3 || got[2] != "POST "+cancel {
		t.Errorf("server got %q, want the cancellation last", got)
	}
	select {
	case in := <-c.Incoming():
		t.Errorf("after the cancellation the transport delivered %s", in.Raw)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestLegacySSEErrorAnswer: a legacy HTTP+SSE server that refuses a POSTed
// request with a JSON-RPC error body has answered it; the answer arrives
// like any other, with the HTTP status.
func TestLegacySSEErrorAnswer(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "event: endpoint\ndata: /messages?s=1\n\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32602,"message":"Invalid params","data":"x"}}`+"\n")
	})
	c, _ := dialLegacy(t, h, "/sse")
	if err := c.Send(context.Background(), []byte(`{"jsonrpc":"2.0","id":"q","method":"tools/list"}`), nil); err != nil {
		t.Fatalf("Send = %v, want the error delivered as the answer", err)
	}
	select {
	case in := <-c.Incoming():
		if want := `{"jsonrpc":"2.0","id":"q","error":{"code":-32602,"message":"Invalid params","data":"x"}}` + "\n"; string(in.Raw) != want || in.Status != http.StatusBadRequest {
			t.Errorf("got %q with status %d, want %q with 400", in.Raw, in.Status, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no answer")
	}
}
