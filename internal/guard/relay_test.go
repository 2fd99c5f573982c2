package guard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/audit"
	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/relay"
	"github.com/countersign/countersign/internal/transport"
)

// recordingConn is an upstream the test plays by hand: it keeps every byte
// the relay sends it, and answers each tools/call with answer.
type recordingConn struct {
	mu     sync.Mutex
	sent   [][]byte
	answer func(call []byte) string // the result member for a tools/call
	in     chan transport.Incoming
	done   chan struct{}
	once   sync.Once
}

func (c *recordingConn) Send(_ context.Context, msg []byte, _ http.Header) error {
	c.mu.Lock()
	c.sent = append(c.sent, append([]byte(nil), msg...))
	c.mu.Unlock()
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	if json.Unmarshal(msg, &m) == nil && m.Method == "tools/call" && m.ID != nil {
		c.in <- transport.Incoming{Raw: []byte(`{"jsonrpc":"2.0","id":` + string(m.ID) + `,"result":` + c.answer(msg) + `}`)}
	}
	return nil
}
func (c *recordingConn) Incoming() <-chan transport.Incoming { return c.in }
func (c *recordingConn) Done() <-chan struct{}               { return c.done }
func (c *recordingConn) Err() error                          { return transport.ErrClosed }
func (c *recordingConn) Close() error                        { c.once.Do(func() { close(c.done) }); return nil }

// received returns every message the upstream got, in order.
func (c *recordingConn) received() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.sent...)
}

// relayFixture is the guard fixture behind a real relay on loopback, with
// the recording upstream as the "github" server, spoken to sessionless
// (2026-07-28).
type relayFixture struct {
	*fixture
	up   *recordingConn
	port int
	seen chan gate.Call // calls the scripted person decided, when a test scripts one
}

const relayToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// serveRelay runs a relay for srv, guarded by f's guard, on a loopback
// port until the test ends, and returns the port.
func serveRelay(t *testing.T, f *fixture, srv relay.Server) int {
	t.Helper()
	hs := httptest.NewUnstartedServer(nil)
	port := hs.Listener.Addr().(*net.TCPAddr).Port
	r, err := relay.New(relay.Options{Servers: []relay.Server{srv}, Gate: f.g, Filter: f.g, Token: relayToken, Port: port,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	hs.Config.Handler = r
	hs.Start()
	t.Cleanup(func() { hs.CloseClientConnections(); r.Close(); hs.Close() })
	return port
}

func newRelayFixture(t *testing.T, answer func(call []byte) string) *relayFixture {
	t.Helper()
	f := newFixture(t)
	up := &recordingConn{answer: answer, in: make(chan transport.Incoming, 10), done: make(chan struct{})}
	srv := relay.Server{ID: "github", Name: "GitHub", Dial: func(context.Context) (transport.Conn, error) { return up, nil }}
	port := serveRelay(t, f, srv)
	return &relayFixture{fixture: f, up: up, port: port, seen: make(chan gate.Call, 10)}
}

// modernMeta is the _meta a 2026-07-28 client puts on every request.
const modernMeta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"modern-host","version":"1"},"io.modelcontextprotocol/clientCapabilities":{"elicitation":{}}}`

// call posts a tools/call with params (without _meta) in the background
// and returns the host's answer when it comes.
func (rf *relayFixture) call(id int, params string) <-chan string {
	out := make(chan string, 1)
	go func() {
		body := `{"jsonrpc":"2.0","id":` + strconv.Itoa(id) + `,"method":"tools/call","params":{` + params + `,` + modernMeta + `}}`
		req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:"+strconv.Itoa(rf.port)+"/servers/github/mcp", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+relayToken)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
		req.Header.Set("Mcp-Method", "tools/call")
		var p struct {
			Name string `json:"name"`
		}
		json.Unmarshal([]byte("{"+params+"}"), &p)
		req.Header.Set("Mcp-Name", p.Name)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			out <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		out <- string(b)
	}()
	return out
}

func (rf *relayFixture) answer(ch <-chan string) string {
	rf.t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(10 * time.Second):
		rf.t.Fatal("the AI app got no answer")
		return ""
	}
}

// TestEditedArgumentsAreHeldToThePolicy is issue 11 finding 3: a person's
// edit that leaves the allowlist, or that servers could read differently,
// is refused in the review window with the reason, the call keeps waiting,
// the refusal is audited, and the server never receives it. An edit the
// rules accept runs, exactly as edited.
func TestEditedArgumentsAreHeldToThePolicy(t *testing.T) {
	rf := newRelayFixture(t, func([]byte) string { return `{"content":[{"type":"text","text":"created"}]}` })
	answer := rf.call(7, `"name":"create_issue","arguments":{"owner":"DEFRA","repo":"ffc-pay","title":"Fix login"}`)
	c := rf.waitCall()

	// As the person types, the review window previews the same rules,
	// recording nothing.
	if why, _ := c.Preview(json.RawMessage(`{"owner":"DEFRA","repo":"secret","title":"Fix login"}`)); !strings.Contains(why, "DEFRA/secret is not in the allowlist for GitHub") {
		t.Errorf("preview of an edit outside the allowlist: %q", why)
	}
	if why, ws := c.Preview(json.RawMessage(`{"owner":"DEFRA","repo":"ffc-api","title":"` + ghToken + `"}`)); why != "" || len(ws) != 1 || ws[0].Kind != gate.WarnSecret {
		t.Errorf("preview of an edit with a secret: %q, %+v", why, ws)
	}
	if recs := rf.events(audit.Filter{Kinds: []audit.Kind{audit.KindPolicyDenied}}); len(recs) != 0 {
		t.Errorf("a preview was audited: %+v", recs)
	}

	for _, tc := range []struct {
		edit, reason string
	}{
		{`{"owner":"DEFRA","repo":"secret","title":"Fix login"}`, "DEFRA/secret is not in the allowlist for GitHub"},
		{`{"owner":"DEFRA","repo":"ffc-pay","Repo":"secret","title":"Fix login"}`, "A name appears twice"},
		{`{"owner":"DEFRA","repo":"ffc-pay","repo":"secret","title":"Fix login"}`, "A name appears twice"},
		{`["DEFRA","secret"]`, "must be a JSON object"},
		{`{"owner":"DEFRA","title":"Fix login"}`, "can no longer tell which repository or project the call touches (the repo argument is not given)"},
		{`{"owner":"DEFRA","repo":["secret"],"title":"Fix login"}`, "can no longer tell which repository"},
	} {
		err := rf.q.Decide(c.ID, gate.Decision{Approve: true, Arguments: json.RawMessage(tc.edit)})
		var refused *gate.EditRefusedError
		if !errors.As(err, &refused) || !strings.Contains(refused.Reason, tc.reason) {
			t.Fatalf("edit %s: err = %v, want a refusal saying %q", tc.edit, err, tc.reason)
		}
		if p := rf.q.Pending(); len(p) != 1 || p[0].ID != c.ID {
			t.Fatalf("edit %s: pending %+v, want the call still waiting", tc.edit, p)
		}
	}
	recs := rf.events(audit.Filter{Kinds: []audit.Kind{audit.KindPolicyDenied}})
	if len(recs) != 6 {
		t.Fatalf("%d refusals audited, want 6: %+v", len(recs), recs)
	}
	for _, r := range recs {
		if r.CallID != c.ID || !strings.Contains(r.Reason, "the call still waits") || len(r.EditedArguments) == 0 ||
			!strings.Contains(string(r.Arguments), `"ffc-pay"`) {
			t.Errorf("audit of a refused edit: %+v", r)
		}
	}

	// Nothing went upstream while the person edited.
	for _, msg := range rf.up.received() {
		if bytes.Contains(msg, []byte(`tools/call`)) {
			t.Fatalf("the server received a call before an accepted decision: %s", msg)
		}
	}

	// An edit inside the allowlist runs, exactly as edited.
	edit := `{"owner":"DEFRA","repo":"ffc-api","title":"Fix login"}`
	if err := rf.q.Decide(c.ID, gate.Decision{Approve: true, Arguments: json.RawMessage(edit)}); err != nil {
		t.Fatal(err)
	}
	if got := rf.answer(answer); !strings.Contains(got, "created") {
		t.Fatalf("host got %s", got)
	}
	var calls [][]byte
	for _, msg := range rf.up.received() {
		if bytes.Contains(msg, []byte(`tools/call`)) {
			calls = append(calls, msg)
		}
	}
	if len(calls) != 1 || !bytes.Contains(calls[0], []byte(`"arguments":`+edit)) || bytes.Contains(calls[0], []byte("secret")) {
		t.Fatalf("the server received %s", calls)
	}
	decided := rf.events(audit.Filter{Kinds: []audit.Kind{audit.KindCallDecided}})
	if len(decided) != 1 || string(decided[0].EditedArguments) != edit || !strings.Contains(string(decided[0].Arguments), `"ffc-pay"`) {
		t.Fatalf("decision audit %+v", decided)
	}
}

// fakeQueue approves every call with fixed edited arguments, skipping the
// gate's Check: a queue that lets an edit through must not be enough.
type fakeQueue struct{ args json.RawMessage }

func (fakeQueue) NewID() string { return "1" }
func (q fakeQueue) Submit(_ context.Context, c gate.Call) gate.Verdict {
	return gate.Verdict{CallID: c.ID, Outcome: gate.OutcomeApproved, Arguments: q.args}
}

func TestApprovedEditOutsideThePolicyIsBlockedAfterTheQueue(t *testing.T) {
	f := newFixture(t)
	g := New(Options{Queue: fakeQueue{json.RawMessage(`{"owner":"DEFRA","repo":"secret"}`)}, Audit: f.log})
	g.SetPolicies(f.g.policies)
	v := g.Submit(context.Background(), gate.Call{Server: "github", ServerName: "GitHub", Tool: "create_issue",
		Arguments: json.RawMessage(`{"owner":"DEFRA","repo":"ffc-pay","title":"x"}`)})
	if v.Approved() || v.Outcome != gate.OutcomeBlocked || !strings.Contains(v.Message(), "DEFRA/secret is not in the allowlist") {
		t.Fatalf("verdict %+v: %s", v, v.Message())
	}
	recs := f.events(audit.Filter{Kinds: []audit.Kind{audit.KindPolicyDenied}})
	if len(recs) != 1 || string(recs[0].EditedArguments) != `{"owner":"DEFRA","repo":"secret"}` || recs[0].Outcome != audit.OutcomeDenied {
		t.Fatalf("audit %+v", recs)
	}
}

// TestRetryShowsTheServersQuestionAndTheAnswer is issue 11 finding 4: a
// 2026-07-28 server answers a call with input_required; the AI app's retry
// carries its answers, and the person sees the question beside them.
func TestRetryShowsTheServersQuestionAndTheAnswer(t *testing.T) {
	question := `{"method":"elicitation/create","params":{"mode":"form","message":"This deletes all 412 open issues in DEFRA/ffc-pay. Are you sure?","requestedSchema":{"type":"object","properties":{"confirm":{"type":"boolean"}},"required":["confirm"]}}}`
	rf := newRelayFixture(t, func(call []byte) string {
		if bytes.Contains(call, []byte(`"inputResponses"`)) {
			return `{"resultType":"complete","content":[{"type":"text","text":"deleted"}]}`
		}
		return `{"resultType":"input_required","inputRequests":{"confirm_delete":` + question + `},"requestState":"state-1"}`
	})
	go func() {
		for c := range rf.calls {
			rf.q.Decide(c.ID, gate.Decision{Approve: true})
			rf.seen <- c
		}
	}()
	args := `"name":"update_issue_state","arguments":{"owner":"DEFRA","repo":"ffc-pay","issue_number":1}`
	if got := rf.answer(rf.call(1, args)); !strings.Contains(got, "input_required") || !strings.Contains(got, "412 open issues") {
		t.Fatalf("first answer %s", got)
	}
	<-rf.seen

	responses := `{"confirm_delete":{"action":"accept","content":{"confirm":true,"note":"` + ghToken + `"}}}`
	got := rf.answer(rf.call(2, args+`,"inputResponses":`+responses+`,"requestState":"state-1"`))
	if !strings.Contains(got, "deleted") {
		t.Fatalf("retry answer %s", got)
	}
	c := <-rf.seen
	if string(c.InputResponses) != responses || string(c.RequestState) != `"state-1"` {
		t.Fatalf("gate call carries %s / %s", c.InputResponses, c.RequestState)
	}
	if len(c.Exchanges) != 1 {
		t.Fatalf("exchanges %+v", c.Exchanges)
	}
	x := c.Exchanges[0]
	if x.Key != "confirm_delete" || !strings.Contains(string(x.Request), "This deletes all 412 open issues") ||
		!strings.Contains(string(x.Response), `"action":"accept"`) || strings.Contains(string(x.Response), ghToken) {
		t.Fatalf("exchange %s: %s → %s", x.Key, x.Request, x.Response)
	}
	var kinds []string
	for _, w := range c.Warnings {
		kinds = append(kinds, string(w.Kind))
	}
	if !strings.Contains(strings.Join(kinds, ","), "secret") || strings.Contains(strings.Join(kinds, ","), "input-unseen") {
		t.Fatalf("warnings %v", kinds)
	}
	// The server got the answers byte for byte.
	sent := rf.up.received()
	if last := sent[len(sent)-1]; !bytes.Contains(last, []byte(`"inputResponses":`+responses+`,"requestState":"state-1"`)) {
		t.Fatalf("the server received %s", last)
	}

	// A retry with a state Countersign never saw still shows the answers,
	// with a warning.
	rf.answer(rf.call(3, args+`,"inputResponses":{"other":{"action":"decline"}},"requestState":"forged"`))
	c = <-rf.seen
	if len(c.Exchanges) != 1 || c.Exchanges[0].Request != nil || string(c.Exchanges[0].Response) != `{"action":"decline"}` {
		t.Fatalf("exchanges %+v", c.Exchanges)
	}
	if len(c.Warnings) == 0 || c.Warnings[0].Kind != gate.WarnInputUnseen || !strings.Contains(c.Warnings[0].Text, "Countersign did not see the server's question") {
		t.Fatalf("warnings %+v", c.Warnings)
	}
}

// A call whose target was unknown to begin with can be edited freely
// within the rules: the person already saw that warning.
func TestEditOfACallWithUnknownTargetsIsJudgedByThePolicy(t *testing.T) {
	f := newFixture(t)
	got := f.submit(gate.Call{Server: "everything", ServerName: "Everything", Tool: "echo", Arguments: json.RawMessage(`{"message":"hi"}`)})
	c := f.waitCall()
	edit := `{"message":"` + ghToken + `"}`
	if err := f.q.Decide(c.ID, gate.Decision{Approve: true, Arguments: json.RawMessage(edit)}); err != nil {
		t.Fatal(err)
	}
	if v := <-got; !v.Approved() || string(v.Arguments) != edit {
		t.Fatalf("verdict %+v", v)
	}
	// The audit keeps the edit, redacted, and notes the secret in it.
	recs := f.events(audit.Filter{Kinds: []audit.Kind{audit.KindCallDecided}})
	if len(recs) != 1 || strings.Contains(string(recs[0].EditedArguments), ghToken) || !strings.Contains(string(recs[0].EditedArguments), "redacted") ||
		!strings.Contains(recs[0].Reason, "The edited arguments contain what looks like a secret") {
		t.Fatalf("audit %+v", recs)
	}
}
