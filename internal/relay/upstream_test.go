package relay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/transport"
)

// recordedRequest is one HTTP request a handPlayed upstream received.
type recordedRequest struct {
	Method string
	Header http.Header
	Body   []byte
}

// handPlayed is a Streamable HTTP upstream the test plays by hand: it
// records every byte it receives and answers with exactly the bytes the
// test's reply function writes.
type handPlayed struct {
	url   string
	mu    sync.Mutex
	got   []recordedRequest
	reply func(w http.ResponseWriter, r *http.Request, body []byte)
}

func newHandPlayed(t *testing.T, reply func(w http.ResponseWriter, r *http.Request, body []byte)) *handPlayed {
	t.Helper()
	h := &handPlayed{reply: reply}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.got = append(h.got, recordedRequest{Method: r.Method, Header: r.Header.Clone(), Body: body})
		h.mu.Unlock()
		h.reply(w, r, body)
	}))
	t.Cleanup(hs.Close)
	h.url = hs.URL + "/mcp"
	return h
}

// server is a relay Server dialing the upstream.
func (h *handPlayed) server(id string) Server {
	return Server{ID: id, Name: "Hand", Dial: func(context.Context) (transport.Conn, error) {
		return transport.NewStreamableHTTP(transport.HTTPOptions{URL: h.url}), nil
	}}
}

// requests returns what the upstream has received so far.
func (h *handPlayed) requests() []recordedRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]recordedRequest(nil), h.got...)
}

// upstreamID returns the raw id of a JSON-RPC request body.
func upstreamID(t *testing.T, body []byte) string {
	t.Helper()
	var m struct {
		ID json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal(body, &m); err != nil || m.ID == nil {
		t.Errorf("upstream got a body with no id: %q", body)
		return "null"
	}
	return string(m.ID)
}

// TestUpstreamErrorAnswersPassThrough: a server that refuses a request with
// an HTTP error status and a JSON-RPC error body has answered it. The host
// gets that error under its own id, code, message and data as the server
// wrote them, with the HTTP status the transport specification ties to the
// error, not Countersign's own -32000 quoting the upstream id.
func TestUpstreamErrorAnswersPassThrough(t *testing.T) {
	const modernHeaders = "2026-07-28"
	cases := []struct {
		name        string
		status      int
		contentType string
		errBody     string // %ID% is replaced by the id the upstream got
		session     bool   // the host uses a Countersign session (2025 era)
		hostStatus  int
		hostBody    string // %HOST% is the host's id; empty: a Countersign error
	}{
		{
			name: "missing _meta: 400 with -32602", status: 400, contentType: "application/json",
			errBody:    `{"jsonrpc":"2.0","id":%ID%,"error":{"code":-32602,"message":"Invalid params: missing _meta","data":{"missing":["_meta"]}}}`,
			hostStatus: 400,
			hostBody:   `{"jsonrpc":"2.0","id":%HOST%,"error":{"code":-32602,"message":"Invalid params: missing _meta","data":{"missing":["_meta"]}}}`,
		},
		{
			name: "header mismatch, member order and spacing kept", status: 400, contentType: "application/json; charset=utf-8",
			errBody:    "{\"error\": {\"message\": \"Header mismatch\", \"code\": -32020},\n \"id\": %ID%, \"jsonrpc\": \"2.0\"}\n",
			hostStatus: 400,
			hostBody:   "{\"error\": {\"message\": \"Header mismatch\", \"code\": -32020},\n \"id\": %HOST%, \"jsonrpc\": \"2.0\"}\n",
		},
		{
			name: "unknown method: 404 with -32601 and a null id", status: 404, contentType: "application/json",
			errBody:    `{"jsonrpc":"2.0","id":null,"error":{"code":-32601,"message":"Method not found"}}`,
			hostStatus: 404,
			hostBody:   `{"jsonrpc":"2.0","id":%HOST%,"error":{"code":-32601,"message":"Method not found"}}`,
		},
		{
			name: "unsupported version without an id member", status: 400, contentType: "application/json",
			errBody:    `{"jsonrpc":"2.0","error":{"code":-32022,"message":"Unsupported protocol version","data":{"supported":["2026-07-28"]}}}`,
			hostStatus: 400,
			hostBody:   `{"id":%HOST%,"jsonrpc":"2.0","error":{"code":-32022,"message":"Unsupported protocol version","data":{"supported":["2026-07-28"]}}}`,
		},
		{
			name: "404 to a host with a session would mean the session ended: 200", status: 404, contentType: "application/json", session: true,
			errBody:    `{"jsonrpc":"2.0","id":%ID%,"error":{"code":-32601,"message":"Method not found"}}`,
			hostStatus: 200,
			hostBody:   `{"jsonrpc":"2.0","id":%HOST%,"error":{"code":-32601,"message":"Method not found"}}`,
		},
		{
			name: "403 is about Countersign's access: the error, with 200", status: 403, contentType: "application/json",
			errBody:    `{"jsonrpc":"2.0","id":%ID%,"error":{"code":-32600,"message":"Forbidden"}}`,
			hostStatus: 200,
			hostBody:   `{"jsonrpc":"2.0","id":%HOST%,"error":{"code":-32600,"message":"Forbidden"}}`,
		},
		{
			name: "an error for another id is no answer", status: 400, contentType: "application/json",
			errBody:    `{"jsonrpc":"2.0","id":"someone-else","error":{"code":-32602,"message":"nope"}}`,
			hostStatus: 200,
		},
		{
			name: "plain text is no answer", status: 400, contentType: "text/plain",
			errBody:    `{"jsonrpc":"2.0","id":%ID%,"error":{"code":-32602,"message":"nope"}}`,
			hostStatus: 200,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := newHandPlayed(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
				if r.Method != http.MethodPost {
					w.WriteHeader(http.StatusMethodNotAllowed)
					return
				}
				var m struct {
					Method string `json:"method"`
				}
				json.Unmarshal(body, &m)
				if m.Method == "initialize" {
					w.Header().Set("Content-Type", "application/json")
					io.WriteString(w, `{"jsonrpc":"2.0","id":`+upstreamID(t, body)+`,"result":{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"hand","version":"1"}}}`)
					return
				}
				if !strings.Contains(string(body), `"id"`) {
					w.WriteHeader(http.StatusAccepted)
					return
				}
				w.Header().Set("Content-Type", tc.contentType)
				w.WriteHeader(tc.status)
				io.WriteString(w, strings.ReplaceAll(tc.errBody, "%ID%", upstreamID(t, body)))
			})
			e := newEnv(t, []Server{up.server("hand")})
			sid := ""
			if tc.session {
				sid = e.initialize("hand")
			}
			const hostID = `"host-7"`
			resp := e.post(context.Background(), "hand", sid, `{"jsonrpc":"2.0","id":"host-7","method":"tools/list","params":{}}`,
				"Mcp-Protocol-Version", modernHeaders, "Mcp-Method", "tools/list")
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()

			// The upstream got the request once, under its own id, every
			// other byte the host's.
			var posts []recordedRequest
			for _, r := range up.requests() {
				if r.Method == http.MethodPost && bytes.Contains(r.Body, []byte(`"tools/list"`)) {
					posts = append(posts, r)
				}
			}
			if len(posts) != 1 {
				t.Fatalf("upstream got %d tools/list POSTs, want 1", len(posts))
			}
			upID := upstreamID(t, posts[0].Body)
			if want := `{"jsonrpc":"2.0","id":` + upID + `,"method":"tools/list","params":{}}`; string(posts[0].Body) != want {
				t.Errorf("upstream got %s, want %s", posts[0].Body, want)
			}

			if resp.StatusCode != tc.hostStatus {
				t.Errorf("host got HTTP %d, want %d (body %s)", resp.StatusCode, tc.hostStatus, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("host got Content-Type %q", ct)
			}
			if tc.hostBody == "" {
				// Not an answer: Countersign's own error, under the host's id.
				if !bytes.Contains(body, []byte(`"id":`+hostID)) || !bytes.Contains(body, []byte(`-32000`)) {
					t.Errorf("host got %s, want Countersign's own error", body)
				}
				return
			}
			if want := strings.ReplaceAll(tc.hostBody, "%HOST%", hostID); string(body) != want {
				t.Errorf("host got\n%s\nwant\n%s", body, want)
			}
		})
	}
}

// TestUpstreamErrorAnswersAreFiltered: an error the server answers with
// passes the same redaction as any other error answer.
func TestUpstreamErrorAnswersAreFiltered(t *testing.T) {
	up := newHandPlayed(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"jsonrpc":"2.0","id":`+upstreamID(t, body)+`,"error":{"code":-32602,"message":"bad password hunter2","data":{"echo":"hunter2"}}}`)
	})
	f := &recordingFilter{}
	e := newEnv(t, []Server{up.server("hand")}, func(o *Options) { o.Filter = f })
	resp := e.post(context.Background(), "hand", "", `{"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":"p"}}`,
		"Mcp-Protocol-Version", "2026-07-28", "Mcp-Method", "prompts/get", "Mcp-Name", "p")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := `{"jsonrpc":"2.0","id":3,"error":{"code":-32602,"message":"bad password [redacted: password]","data":{"echo":"[redacted: password]"}}}`
	if resp.StatusCode != http.StatusBadRequest || string(body) != want {
		t.Errorf("host got HTTP %d %s, want 400 %s", resp.StatusCode, body, want)
	}
}

// TestSubscriptionsListenArrives: a 2026-07-28 server answers
// subscriptions/listen with an event stream that stays open: the
// acknowledgement, change notifications, and at the end the closing
// answer, each naming the subscription by the listen request's id. The
// host gets each as it comes, naming its own id, every other byte the
// server's.
func TestSubscriptionsListenArrives(t *testing.T) {
	release := make(chan struct{})
	up := newHandPlayed(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		if r.Method != http.MethodPost || !bytes.Contains(body, []byte(`"subscriptions/listen"`)) {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		id := upstreamID(t, body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/subscriptions/acknowledged\",\"params\":{\"_meta\":{\"io.modelcontextprotocol/subscriptionId\":"+id+"},\"notifications\":{\"toolsListChanged\":true}}}\n\n")
		io.WriteString(w, ":\r\n\r\n")
		io.WriteString(w, "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\",\"params\":{\"_meta\":{\"x\":[1],\"io.modelcontextprotocol/subscriptionId\" : "+id+" }}}\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":"+id+",\"result\":{\"resultType\":\"complete\",\"_meta\":{\"io.modelcontextprotocol/subscriptionId\":"+id+"}}}\n\n")
	})
	e := newEnv(t, []Server{up.server("hand")}, func(o *Options) { o.KeepAlive = time.Hour })
	resp := e.post(context.Background(), "hand", "", `{"jsonrpc":"2.0","id":"listen-1","method":"subscriptions/listen","params":{"notifications":{"toolsListChanged":true},`+modern+`}}`,
		"Mcp-Protocol-Version", "2026-07-28", "Mcp-Method", "subscriptions/listen")
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("listen answered %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	body := bufio.NewReader(resp.Body)
	readExactly(t, body, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/subscriptions/acknowledged\",\"params\":{\"_meta\":{\"io.modelcontextprotocol/subscriptionId\":\"listen-1\"},\"notifications\":{\"toolsListChanged\":true}}}\n\n")
	readExactly(t, body, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\",\"params\":{\"_meta\":{\"x\":[1],\"io.modelcontextprotocol/subscriptionId\" : \"listen-1\" }}}\n\n")
	close(release)
	rest, _ := io.ReadAll(body)
	if want := "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":\"listen-1\",\"result\":{\"resultType\":\"complete\",\"_meta\":{\"io.modelcontextprotocol/subscriptionId\":\"listen-1\"}}}\n\n"; string(rest) != want {
		t.Errorf("host got\n%q\nwant\n%q", rest, want)
	}
	reqs := up.requests()
	if len(reqs) != 1 {
		t.Fatalf("upstream got %d requests", len(reqs))
	}
	if want := `{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{"notifications":{"toolsListChanged":true},` + modern + `}}`; string(reqs[0].Body) != want {
		t.Errorf("upstream got %s, want %s", reqs[0].Body, want)
	}
}

// TestSeveralMessagesInAJSONBodyAreRefused: Streamable HTTP allows one JSON
// object in an application/json answer (2025-03-26 to 2026-07-28); several
// messages come as an event stream. A body with several newline-separated
// messages is not passed on in part: the host is told, in plain words.
func TestSeveralMessagesInAJSONBodyAreRefused(t *testing.T) {
	up := newHandPlayed(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		id := upstreamID(t, body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"x"}}`+"\n"+
			`{"jsonrpc":"2.0","id":`+id+`,"result":{"tools":[]}}`+"\n")
	})
	e := newEnv(t, []Server{up.server("hand")})
	resp := e.post(context.Background(), "hand", "", `{"jsonrpc":"2.0","id":"t","method":"tools/list","params":{`+modern+`}}`,
		"Mcp-Protocol-Version", "2026-07-28", "Mcp-Method", "tools/list")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := `{"jsonrpc":"2.0","id":"t","error":{"code":-32000,"message":"the server did not answer: it sent more than one message in a JSON response, which the MCP transport does not allow"}}`
	if resp.StatusCode != http.StatusOK || string(body) != want {
		t.Errorf("host got %d %s, want %s", resp.StatusCode, body, want)
	}
}

// TestClosingAListenStreamClosesItUpstream: on 2026-07-28 Streamable HTTP a
// client cancels by closing the response stream, and sends no
// notifications/cancelled. When the host closes its listen stream, the
// server's stream is closed too, and the server gets nothing more.
func TestClosingAListenStreamClosesItUpstream(t *testing.T) {
	closed := make(chan struct{})
	up := newHandPlayed(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		if !bytes.Contains(body, []byte(`"subscriptions/listen"`)) {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/subscriptions/acknowledged\",\"params\":{\"_meta\":{\"io.modelcontextprotocol/subscriptionId\":"+upstreamID(t, body)+"},\"notifications\":{}}}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		close(closed)
	})
	e := newEnv(t, []Server{up.server("hand")}, func(o *Options) { o.KeepAlive = time.Hour })
	ctx, cancel := context.WithCancel(context.Background())
	resp := e.post(ctx, "hand", "", `{"jsonrpc":"2.0","id":9,"method":"subscriptions/listen","params":{"notifications":{},`+modern+`}}`,
		"Mcp-Protocol-Version", "2026-07-28", "Mcp-Method", "subscriptions/listen")
	readExactly(t, bufio.NewReader(resp.Body), "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/subscriptions/acknowledged\",\"params\":{\"_meta\":{\"io.modelcontextprotocol/subscriptionId\":9},\"notifications\":{}}}\n\n")
	cancel()
	resp.Body.Close()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the server's listen stream stayed open after the host closed its own")
	}
	time.Sleep(100 * time.Millisecond)
	if reqs := up.requests(); len(reqs) != 1 {
		for _, r := range reqs[1:] {
			t.Errorf("upstream also got %s %s", r.Method, r.Body)
		}
	}
}

// TestSlowUpstreamErrorKeepsItsStatus: a sessionless host's lone tools/call
// (answered on another goroutine, after the person's decision) keeps the
// HTTP status of the server's error answer even when the answer takes
// longer than a quick one.
func TestSlowUpstreamErrorKeepsItsStatus(t *testing.T) {
	up := newHandPlayed(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		time.Sleep(300 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"jsonrpc":"2.0","id":`+upstreamID(t, body)+`,"error":{"code":-32020,"message":"Header mismatch"}}`)
	})
	e := newEnv(t, []Server{up.server("hand")}, func(o *Options) { o.KeepAlive = 5 * time.Second })
	resp := e.post(context.Background(), "hand", "", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{},`+modern+`}}`,
		"Mcp-Protocol-Version", "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "echo")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `{"jsonrpc":"2.0","id":1,"error":{"code":-32020,"message":"Header mismatch"}}`; resp.StatusCode != http.StatusBadRequest || string(body) != want {
		t.Errorf("host got %d %q, want 400 %s", resp.StatusCode, body, want)
	}
}
