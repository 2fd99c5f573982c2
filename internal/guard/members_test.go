package guard

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/countersign/countersign/internal/audit"
	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/relay"
	"github.com/countersign/countersign/internal/transport"
	"github.com/google/go-cmp/cmp"
)

const hostToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// handPlayed is a Streamable HTTP server written by hand: it answers each
// method with exact bytes from its script (ID stands for the id of the
// request being answered) and records every message it receives.
type handPlayed struct {
	t      *testing.T
	script map[string][]string // method → messages sent back, as SSE when more than one
	mu     sync.Mutex
	got    [][]byte
}

func (h *handPlayed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "no stream here", http.StatusMethodNotAllowed)
		return
	}
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	h.got = append(h.got, body)
	h.mu.Unlock()
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	if err := json.Unmarshal(body, &m); err != nil || m.ID == nil || m.Method == "" {
		w.WriteHeader(http.StatusAccepted) // notifications and answers
		return
	}
	msgs, ok := h.script[m.Method]
	if !ok {
		h.t.Errorf("the upstream got an unscripted %s", m.Method)
		http.Error(w, "unscripted", http.StatusBadRequest)
		return
	}
	w.Header().Set("Mcp-Session-Id", "up-session-1")
	if len(msgs) == 1 {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, strings.ReplaceAll(msgs[0], `"id":ID`, `"id":`+string(m.ID)))
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	for i, msg := range msgs {
		transport.WriteEvent(w, strconv.Itoa(i+1), "message", []byte(strings.ReplaceAll(msg, `"id":ID`, `"id":`+string(m.ID))))
		w.(http.Flusher).Flush()
	}
}

// handPlayedSession puts the real relay, with f's guard as its gate and
// filter, in front of a hand-played server "everything" following script,
// and opens an AI app session through it. It returns the server, the
// relay's URL for it and the session id.
func handPlayedSession(t *testing.T, f *fixture, script map[string][]string) (*handPlayed, string, string) {
	t.Helper()
	script["initialize"] = []string{`{"jsonrpc":"2.0","id":ID,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"hand","version":"1"}}}`}
	up := &handPlayed{t: t, script: script}
	upSrv := httptest.NewServer(up)
	t.Cleanup(upSrv.Close)

	hs := httptest.NewUnstartedServer(nil)
	port := hs.Listener.Addr().(*net.TCPAddr).Port
	r, err := relay.New(relay.Options{
		Servers: []relay.Server{{ID: "everything", Name: "Everything", Dial: func(context.Context) (transport.Conn, error) {
			return transport.NewStreamableHTTP(transport.HTTPOptions{URL: upSrv.URL + "/mcp", Logger: slog.New(slog.DiscardHandler)}), nil
		}}},
		Gate: f.g, Filter: f.g, Token: hostToken, Port: port, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	hs.Config.Handler = r
	hs.Start()
	t.Cleanup(func() { hs.CloseClientConnections(); r.Close(); hs.Close() })
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/servers/everything/mcp"

	resp := hostPost(t, url, "", `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{"sampling":{}},"clientInfo":{"name":"host","version":"1"}}}`)
	sid := resp.Header.Get("Mcp-Session-Id")
	hostMessages(t, resp)
	hostPost(t, url, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`).Body.Close()
	return up, url, sid
}

// hostPost sends one message to the relay as an AI app would.
func hostPost(t *testing.T, url, sid, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+hostToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// hostMessages reads every message of a JSON or SSE answer.
func hostMessages(t *testing.T, resp *http.Response) []string {
	t.Helper()
	defer resp.Body.Close()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		b, _ := io.ReadAll(resp.Body)
		return []string{string(b)}
	}
	var out []string
	r := transport.NewEventReader(resp.Body)
	for {
		ev, err := r.Next()
		if err != nil {
			return out
		}
		if !bytes.Contains(ev.Data, []byte("Waiting for approval")) {
			out = append(out, string(ev.Data))
		}
	}
}

// TestMembersBesideThePayloadAreRedacted plays a server that puts secrets
// in top-level members beside result, params and error ("_debug", a
// member whose name is itself a token) of a tools/call answer, a request
// and a notification it sends during the call, and an error answer. The
// AI app, behind the real relay and guard, gets each message with those
// secrets replaced and every other byte as the server wrote it; the
// redactions are audited as the others are.
func TestMembersBesideThePayloadAreRedacted(t *testing.T) {
	f := newFixture(t)
	var logs bytes.Buffer
	f.g.log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	pw := "Tr0ub4dor93xq!"
	debug := `"_debug" : {"upstreamAuth":"Bearer ` + ghToken + `","n":1e400,"ok":true}`
	keyed := `"` + ghToken + `":[1, 2]`
	markGH, markPW := "[redacted: github token]", "[redacted: password]"
	fromServer := map[string][]string{
		"tools/call": {
			`{"jsonrpc":"2.0","id":"s1","method":"sampling/createMessage","params":{"messages":[],"maxTokens":5},` + debug + `}`,
			`{"jsonrpc":"2.0",` + keyed + `,"method":"notifications/message","params":{"level":"info","data":"copying"}}`,
			`{"jsonrpc":"2.0","method":"notifications/progress","_trace":"password=` + pw + `"}`,
			`{"jsonrpc":"2.0","id":ID,"result":{"content":[{"type":"text","text":"done"}]},` + debug + `,"_meta":{"x":"clean"}}`,
		},
		"prompts/get": {`{"jsonrpc":"2.0",  "error":{"code":-32602,"message":"no such prompt"},"id":ID, "_debug":"password=` + pw + `"}`},
	}
	up, url, sid := handPlayedSession(t, f, fromServer)

	answer := make(chan []string, 1)
	go func() {
		answer <- hostMessages(t, hostPost(t, url, sid, `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{}}}`))
	}()
	c := f.waitCall()
	f.q.Decide(c.ID, gate.Decision{Approve: true})
	got := <-answer

	redactGH := func(s string) string { return strings.ReplaceAll(s, ghToken, markGH) }
	want := []string{
		redactGH(fromServer["tools/call"][0]),
		redactGH(fromServer["tools/call"][1]),
		strings.ReplaceAll(fromServer["tools/call"][2], pw, markPW),
		strings.ReplaceAll(redactGH(fromServer["tools/call"][3]), `"id":ID`, `"id":7`),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("what the AI app got during the call (-want +got):\n%s", diff)
	}

	got = hostMessages(t, hostPost(t, url, sid, `{"jsonrpc":"2.0","id":"p","method":"prompts/get","params":{"name":"x"}}`))
	wantErr := strings.ReplaceAll(strings.ReplaceAll(fromServer["prompts/get"][0], pw, markPW), `"id":ID`, `"id":"p"`)
	if len(got) != 1 || got[0] != wantErr {
		t.Errorf("error answer\n got %q\nwant %q", got, wantErr)
	}

	// Audited like every other redaction: requests and answers with their
	// call, notifications only logged, and never the secret itself.
	var rows []string
	recs := f.events(audit.Filter{Kinds: []audit.Kind{audit.KindCallResult, audit.KindMessageRedacted}})
	for i := len(recs) - 1; i >= 0; i-- {
		rec := recs[i]
		rows = append(rows, rec.Tool+" | "+rec.Client+" | "+rec.Reason+" | "+countsOf(rec.Redactions))
		b, _ := json.Marshal(rec)
		if bytes.Contains(b, []byte(ghToken)) || bytes.Contains(b, []byte(pw)) {
			t.Errorf("audit row %d holds a secret", rec.ID)
		}
	}
	wantRows := []string{
		"sampling/createMessage | host | secrets removed from extra fields of the server's sampling/createMessage request during call " + c.ID + " | github token=1",
		"tools/call | host | secrets removed from extra fields of the answer to tools/call during call " + c.ID + " | github token=1",
		"echo | host |  | ",
		"prompts/get |  | secrets removed from extra fields of the error answer to prompts/get | password=1",
	}
	if diff := cmp.Diff(wantRows, rows); diff != "" {
		t.Errorf("audit rows (-want +got):\n%s", diff)
	}
	for _, line := range []string{
		`msg="secrets removed from extra fields of the server's notifications/message notification" server=everything method=notifications/message call=` + c.ID + ` redactions="github token=1"`,
		`msg="secrets removed from extra fields of the server's notifications/progress notification"`,
	} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("log lacks %s\n%s", line, logs.String())
		}
	}
	if strings.Contains(logs.String(), ghToken) || strings.Contains(logs.String(), pw) {
		t.Errorf("the log holds a secret")
	}

	// What the server received is what the AI app sent, and its answer to
	// the sampling request never came back: nothing was invented.
	up.mu.Lock()
	defer up.mu.Unlock()
	for _, b := range up.got {
		if bytes.Contains(b, []byte(markGH)) || bytes.Contains(b, []byte(markPW)) {
			t.Errorf("the server received a marker: %s", b)
		}
	}
}

func countsOf(m map[string]int) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, k+"="+strconv.Itoa(v))
	}
	return strings.Join(parts, ",")
}

// TestDecodedAndNumericSecretsAreRedactedOnTheWay plays a server whose
// resources/read answer carries a .env file as a base64 blob and whose tool
// result carries a card number written as a JSON number: the AI app gets
// both replaced by markers, every other byte as sent.
func TestDecodedAndNumericSecretsAreRedactedOnTheWay(t *testing.T) {
	f := newFixture(t)
	card := "4539" + "5787" + "6362" + "1486" // Luhn-valid and made up
	env := base64.StdEncoding.EncodeToString([]byte("REGION=eu-west-2\nGITHUB_TOKEN=" + ghToken + "\n"))
	png := base64.StdEncoding.EncodeToString([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"))
	script := map[string][]string{
		"resources/read": {`{"jsonrpc":"2.0","id":ID,"result":{"contents":[{"uri":"file:///app/.env","mimeType":"text/plain","blob":"` + env + `"},` +
			`{"uri":"file:///logo.png","mimeType":"image/png","blob":"` + png + `"}]}}`},
		"tools/call": {`{"jsonrpc":"2.0","id":ID,"result":{"content":[{"type":"text","text":"charged"}],"structuredContent":{"card":` + card + `,"amount":12.50,"order":98765432100}}}`},
	}
	_, url, sid := handPlayedSession(t, f, script)

	got := hostMessages(t, hostPost(t, url, sid, `{"jsonrpc":"2.0","id":"r","method":"resources/read","params":{"uri":"file:///app/.env"}}`))
	want := strings.ReplaceAll(strings.Replace(script["resources/read"][0], env, "[redacted: github token]", 1), `"id":ID`, `"id":"r"`)
	if len(got) != 1 || got[0] != want {
		t.Errorf("resources/read answer\n got %q\nwant %q", got, want)
	}

	answer := make(chan []string, 1)
	go func() {
		answer <- hostMessages(t, hostPost(t, url, sid, `{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"charge","arguments":{}}}`))
	}()
	c := f.waitCall()
	f.q.Decide(c.ID, gate.Decision{Approve: true})
	got = <-answer
	want = strings.ReplaceAll(strings.Replace(script["tools/call"][0], card, `"[redacted: card number]"`, 1), `"id":ID`, `"id":8`)
	if len(got) != 1 || got[0] != want {
		t.Errorf("tools/call answer\n got %q\nwant %q", got, want)
	}
}

// TestParamsBesideAnAnswerAreRedacted: an answer may carry a "params"
// member too (JSON-RPC gives it no meaning there, and the relay does not
// read it), which must be redacted like any other extra member rather than
// skipped as if it were the payload.
func TestParamsBesideAnAnswerAreRedacted(t *testing.T) {
	f := newFixture(t)
	pw := "Tr0ub4dor93xq!"
	fromServer := map[string][]string{
		"tools/call":  {`{"jsonrpc":"2.0","id":ID,"result":{"content":[{"type":"text","text":"done"}]},"params":{"upstreamAuth":"Bearer ` + ghToken + `"}}`},
		"prompts/get": {`{"jsonrpc":"2.0","id":ID,"error":{"code":-32602,"message":"no such prompt"},"params":"password=` + pw + `"}`},
	}
	_, url, sid := handPlayedSession(t, f, fromServer)

	answer := make(chan []string, 1)
	go func() {
		answer <- hostMessages(t, hostPost(t, url, sid, `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{}}}`))
	}()
	c := f.waitCall()
	f.q.Decide(c.ID, gate.Decision{Approve: true})
	got := <-answer
	want := strings.ReplaceAll(strings.ReplaceAll(fromServer["tools/call"][0], ghToken, "[redacted: github token]"), `"id":ID`, `"id":7`)
	if len(got) != 1 || got[0] != want {
		t.Errorf("tools/call answer\n got %q\nwant %q", got, want)
	}
	got = hostMessages(t, hostPost(t, url, sid, `{"jsonrpc":"2.0","id":"p","method":"prompts/get","params":{"name":"x"}}`))
	want = strings.ReplaceAll(strings.ReplaceAll(fromServer["prompts/get"][0], pw, "[redacted: password]"), `"id":ID`, `"id":"p"`)
	if len(got) != 1 || got[0] != want {
		t.Errorf("prompts/get answer\n got %q\nwant %q", got, want)
	}
}
