package guard

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/audit"
	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/relay"
	"github.com/countersign/countersign/internal/transport"
)

// slowConn is an upstream that answers initialize at once and a tools/call
// only when the test says: it reports each call's upstream id on calls.
type slowConn struct {
	in    chan transport.Incoming
	calls chan string
	done  chan struct{}
}

func (c *slowConn) Send(_ context.Context, msg []byte, _ http.Header) error {
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	json.Unmarshal(msg, &m)
	switch {
	case m.Method == "initialize":
		c.in <- transport.Incoming{Raw: []byte(`{"jsonrpc":"2.0","id":` + string(m.ID) + `,"result":{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"slow","version":"1"}}}`)}
	case m.Method == "tools/call":
		c.calls <- string(m.ID)
	}
	return nil
}
func (c *slowConn) Incoming() <-chan transport.Incoming { return c.in }
func (c *slowConn) Done() <-chan struct{}               { return c.done }
func (c *slowConn) Err() error                          { return transport.ErrClosed }
func (c *slowConn) Close() error                        { return nil }

// answerCall sends the server's answer to the call it got under upID.
func (c *slowConn) answerCall(upID string) {
	c.in <- transport.Incoming{Raw: []byte(`{"jsonrpc":"2.0","id":` + upID + `,"result":{"content":[{"type":"text","text":"done"}]}}`)}
}

// deliveryFixture is the guard behind a real relay whose "everything"
// server answers only when the test says.
type deliveryFixture struct {
	*fixture
	up   *slowConn
	base string // the server's endpoint
}

func newDeliveryFixture(t *testing.T) *deliveryFixture {
	t.Helper()
	f := newFixture(t)
	up := &slowConn{in: make(chan transport.Incoming, 10), calls: make(chan string, 10), done: make(chan struct{})}
	srv := relay.Server{ID: "everything", Name: "Everything", Dial: func(context.Context) (transport.Conn, error) { return up, nil }}
	port := serveRelay(t, f, srv)
	return &deliveryFixture{fixture: f, up: up, base: "http://127.0.0.1:" + strconv.Itoa(port) + "/servers/everything/mcp"}
}

// post sends body as the AI app does; sid is its session, "" for none.
func (df *deliveryFixture) post(ctx context.Context, body, accept, sid string) (*http.Response, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, df.base, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+relayToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", accept)
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
		req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	} else {
		req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
		req.Header.Set("Mcp-Method", "tools/call")
		req.Header.Set("Mcp-Name", "echo")
	}
	return http.DefaultClient.Do(req)
}

// callBody is a tools/call of echo, sessionless when meta is set.
func callBody(id int, meta bool) string {
	extra := ""
	if meta {
		extra = "," + modernMeta
	}
	return `{"jsonrpc":"2.0","id":` + strconv.Itoa(id) + `,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}` + extra + `}}`
}

// approveAndForward approves the next call the person is shown and
// returns its gate id and the upstream id it was forwarded under.
func (df *deliveryFixture) approveAndForward() (callID, upID string) {
	df.t.Helper()
	c := df.waitCall()
	if err := df.q.Decide(c.ID, gate.Decision{Approve: true}); err != nil {
		df.t.Fatal(err)
	}
	select {
	case upID = <-df.up.calls:
	case <-time.After(10 * time.Second):
		df.t.Fatal("the approved call never reached the server")
	}
	return c.ID, upID
}

// result waits for the call's closing result record.
func (df *deliveryFixture) result(callID string) audit.Record {
	df.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs := df.events(audit.Filter{CallID: callID, Kinds: []audit.Kind{audit.KindCallResult}})
		if len(recs) > 1 {
			df.t.Fatalf("%d result records for one call: %+v", len(recs), recs)
		}
		if len(recs) == 1 {
			return recs[0]
		}
		if time.Now().After(deadline) {
			df.t.Fatal("the call has no result record")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAnAnswerTheAIAppNeverGotIsAuditedNotDelivered is issue 16's "a
// result dropped while the audit says it was delivered": an AI app that
// closes its request after the call was approved and sent, before the
// server answers, never gets the answer, and the call's one closing
// record says so in plain words instead of recording a result.
func TestAnAnswerTheAIAppNeverGotIsAuditedNotDelivered(t *testing.T) {
	for _, mode := range []struct{ name, accept string }{
		{"one JSON body", "application/json"},
		{"event stream", "application/json, text/event-stream"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			df := newDeliveryFixture(t)
			ctx, hangUp := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				resp, err := df.post(ctx, callBody(1, true), mode.accept, "")
				if err == nil {
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				done <- err
			}()
			callID, upID := df.approveAndForward()
			hangUp()
			<-done
			rec := df.result(callID)
			if rec.Outcome != audit.OutcomeNotDelivered || rec.Actor != audit.ActorApp || !strings.HasPrefix(rec.Reason, "Not delivered: the AI app had gone") {
				t.Errorf("closing record %s %q by %q: %q, want not delivered", rec.Kind, rec.Outcome, rec.Actor, rec.Reason)
			}
			// The server's late answer finds nobody and adds nothing.
			df.up.answerCall(upID)
			time.Sleep(100 * time.Millisecond)
			df.result(callID)
		})
	}
}

// TestAnAnswerTheAIAppGotIsAuditedAsAResult: an AI app that stays gets
// the server's answer, and the closing record is the server's result.
func TestAnAnswerTheAIAppGotIsAuditedAsAResult(t *testing.T) {
	for _, mode := range []struct{ name, accept string }{
		{"one JSON body", "application/json"},
		{"event stream", "application/json, text/event-stream"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			df := newDeliveryFixture(t)
			got := make(chan string, 1)
			go func() {
				resp, err := df.post(context.Background(), callBody(1, true), mode.accept, "")
				if err != nil {
					got <- err.Error()
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				got <- string(b)
			}()
			callID, upID := df.approveAndForward()
			df.up.answerCall(upID)
			if body := <-got; !strings.Contains(body, `"done"`) {
				t.Fatalf("the AI app got %s", body)
			}
			rec := df.result(callID)
			if rec.Outcome != "" || rec.IsError || rec.ResultSize == 0 {
				t.Errorf("closing record %q error %t size %d: %q, want the server's result", rec.Outcome, rec.IsError, rec.ResultSize, rec.Reason)
			}
		})
	}
}

// openSession initializes a session of the 2025-11-25 revision, whose
// event streams can be resumed, and returns its id.
func (df *deliveryFixture) openSession() string {
	df.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, df.base, strings.NewReader(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"resuming-host","version":"1"}}}`))
	req.Header.Set("Authorization", "Bearer "+relayToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		df.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || sid == "" {
		df.t.Fatalf("initialize: %s, session %q", resp.Status, sid)
	}
	return sid
}

// brokenOffCall posts a tools/call on a resumable event stream, has it
// approved and sent, reads the stream's first event id and breaks the
// stream off; then the server answers. It returns the call's gate id and
// the event id to resume from.
func (df *deliveryFixture) brokenOffCall(sid string) (callID, lastEventID string) {
	df.t.Helper()
	ctx, hangUp := context.WithCancel(context.Background())
	defer hangUp()
	type opened struct {
		id  string
		err error
	}
	first := make(chan opened, 1)
	go func() {
		resp, err := df.post(ctx, callBody(7, false), "application/json, text/event-stream", sid)
		if err != nil {
			first <- opened{err: err}
			return
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
				first <- opened{id: id}
				<-ctx.Done()
				return
			}
		}
		first <- opened{err: io.ErrUnexpectedEOF}
	}()
	callID, upID := df.approveAndForward()
	var o opened
	select {
	case o = <-first:
	case <-time.After(10 * time.Second):
		df.t.Fatal("the event stream sent no event id")
	}
	if o.err != nil {
		df.t.Fatal(o.err)
	}
	hangUp()
	// Whether the relay notices the broken stream before the answer comes
	// or after, the answer waits for the resume (or was written before).
	df.up.answerCall(upID)
	return callID, o.id
}

// TestAResultNotDeliveredKeepsTheServersAnswer: the closing record of an
// answer the AI app never got is the server's result (size, error flag,
// secrets removed), marked not delivered; a call never sent stays "not
// sent".
func TestAResultNotDeliveredKeepsTheServersAnswer(t *testing.T) {
	f := newFixture(t)
	approve := func() string {
		done := f.submit(gate.Call{Server: "everything", ServerName: "Everything", Tool: "echo", Arguments: json.RawMessage(`{"message":"hi"}`)})
		c := f.waitCall()
		f.q.Decide(c.ID, gate.Decision{Approve: true})
		<-done
		return c.ID
	}
	sent := approve()
	f.g.Forwarded("everything", sent)
	res := json.RawMessage(`{"content":[{"type":"text","text":"key ` + ghToken + `"}],"isError":true}`)
	f.g.Result("everything", "tools/call", sent, res, nil)
	if recs := f.events(audit.Filter{CallID: sent, Kinds: []audit.Kind{audit.KindCallResult}}); len(recs) != 0 {
		t.Fatalf("recorded before the relay knew whether the AI app got it: %+v", recs)
	}
	f.g.Delivered("everything", sent, false)
	recs := f.events(audit.Filter{CallID: sent, Kinds: []audit.Kind{audit.KindCallResult}})
	if len(recs) != 1 {
		t.Fatalf("%d result records", len(recs))
	}
	r := recs[0]
	if r.Outcome != audit.OutcomeNotDelivered || r.Actor != audit.ActorApp || !r.IsError || r.ResultSize != int64(len(res)) ||
		r.Redactions["github token"] != 1 || !strings.HasPrefix(r.Reason, "Not delivered: the AI app had gone") {
		t.Errorf("record %+v", r.Event)
	}
	f.g.Delivered("everything", sent, false) // told twice: nothing more
	if recs := f.events(audit.Filter{CallID: sent, Kinds: []audit.Kind{audit.KindCallResult}}); len(recs) != 1 {
		t.Errorf("%d result records after a second word", len(recs))
	}

	unsent := approve()
	f.g.Result("everything", "tools/call", unsent, nil, json.RawMessage(`{"code":-32000,"message":"Countersign ended the session"}`))
	f.g.Delivered("everything", unsent, false)
	recs = f.events(audit.Filter{CallID: unsent, Kinds: []audit.Kind{audit.KindCallResult}})
	if len(recs) != 1 || recs[0].Outcome != audit.OutcomeNotSent {
		t.Errorf("a call never sent: %+v", recs)
	}
}

// TestAnAnswerDeliveredOnResumeIsAResult: the AI app resumes the stream
// it broke off (GET with Last-Event-ID) and gets the answer that waited;
// the record is the server's result.
func TestAnAnswerDeliveredOnResumeIsAResult(t *testing.T) {
	df := newDeliveryFixture(t)
	sid := df.openSession()
	callID, last := df.brokenOffCall(sid)
	req, _ := http.NewRequest(http.MethodGet, df.base, nil)
	req.Header.Set("Authorization", "Bearer "+relayToken)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	req.Header.Set("Last-Event-ID", last)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"done"`) {
		t.Fatalf("the resumed stream carried %s", b)
	}
	rec := df.result(callID)
	if rec.Outcome != "" || rec.ResultSize == 0 {
		t.Errorf("closing record %q size %d: %q, want the server's result", rec.Outcome, rec.ResultSize, rec.Reason)
	}
}
