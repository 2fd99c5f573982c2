package reliability

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/app"
	"github.com/countersign/countersign/internal/audit"
	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/testenv"
	"github.com/countersign/countersign/internal/vault"
	"github.com/countersign/countersign/internal/vault/vaulttest"
)

// enabled skips the test unless the reliability suite was asked for: it
// starts the whole app many times and takes a minute or two.
func enabled(t *testing.T) {
	t.Helper()
	if os.Getenv("COUNTERSIGN_RELIABILITY") != "1" {
		t.Skip("the reliability suite runs with COUNTERSIGN_RELIABILITY=1 (scripts/test sets it)")
	}
}

// scale is RELIABILITY_SCALE: how many times longer the load runs.
func scale(t *testing.T) int {
	s := os.Getenv("RELIABILITY_SCALE")
	if s == "" {
		return 1
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("RELIABILITY_SCALE=%q: want a whole number of 1 or more", s)
	}
	return n
}

// peersDir is where the npm peers are installed, or "" when they are not
// (outside CI, where scripts/test installs them).
func peersDir(t *testing.T) string {
	t.Helper()
	return testenv.PeersDir(t, "the reliability suite against the real peers")
}

// fakeUI stands in for the desktop interface: the test decides calls
// through the queue it was handed.
type fakeUI struct{}

func (fakeUI) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (fakeUI) Show()                         {}
func (fakeUI) OpenURL(*url.URL) error        { return errors.New("no browser in tests") }

// notes records the notifications the person was shown.
type notes struct {
	mu   sync.Mutex
	list []string
}

func (n *notes) Notify(title, message string) error {
	n.mu.Lock()
	n.list = append(n.list, title+": "+message)
	n.mu.Unlock()
	return nil
}

func (n *notes) all() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.list...)
}

// instance is one Countersign started by startApp.
type instance struct {
	core    app.Core
	port    int
	token   string
	cfgPath string
	dataDir string
	keyring vault.Keyring
	notes   *notes
	logs    *testenv.LockedBuffer // what the app logs, read while it runs
	cancel  context.CancelFunc
	done    chan error
	stopped bool
}

// setup is what one app instance runs on: its settings file, data folder
// and keychain, kept across a restart.
type setup struct {
	cfgPath string
	dataDir string
	keyring vault.Keyring
	port    int
	timeout string // the approval timeout, "10s" unless set before writeSettings
}

// newSetup writes a settings file with servers (JSON objects) and the
// shortest approval timeout the settings allow.
func newSetup(t *testing.T, servers ...string) *setup {
	t.Helper()
	dir := t.TempDir()
	s := &setup{cfgPath: filepath.Join(dir, "settings.json"), dataDir: filepath.Join(dir, "data"), keyring: vaulttest.NewKeyring(), port: testenv.FreePort(t), timeout: "10s"}
	writeSettings(t, s, servers...)
	// Run makes the login entry match the settings: keep it away from
	// the real ~/.config/autostart of whoever runs the tests.
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "xdg"))
	return s
}

func writeSettings(t *testing.T, s *setup, servers ...string) {
	t.Helper()
	cfg := fmt.Sprintf(`{"version":2,"port":%d,"approvalTimeout":%q,"servers":[%s]}`, s.port, s.timeout, strings.Join(servers, ","))
	if err := os.WriteFile(s.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

func httpServer(id, u string) string {
	return fmt.Sprintf(`{"id":%q,"name":%q,"transport":"streamable-http","url":%q}`, id, "Server "+id, u)
}

func stdioServer(id, command string, args ...string) string {
	a, _ := json.Marshal(args)
	return fmt.Sprintf(`{"id":%q,"name":%q,"transport":"stdio","command":%q,"args":%s}`, id, "Server "+id, command, a)
}

// startApp runs app.Run, as cmd/countersign does, on s and waits until it
// listens.
func startApp(t *testing.T, s *setup) *instance {
	t.Helper()
	in, err := tryStartApp(t, s)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// tryStartApp is startApp returning Run's error when it stops before it
// listens.
func tryStartApp(t *testing.T, s *setup) (*instance, error) {
	t.Helper()
	token, _ := vault.Open(vault.Options{Keyring: s.keyring}).LocalToken()
	in := &instance{port: s.port, token: token, cfgPath: s.cfgPath, dataDir: s.dataDir, keyring: s.keyring,
		notes: &notes{}, logs: &testenv.LockedBuffer{}, done: make(chan error, 1)}
	built := make(chan app.Core, 1)
	o := app.Options{
		ConfigPath: s.cfgPath,
		PolicyPath: filepath.Join(filepath.Dir(s.cfgPath), "no-policy.json"),
		DataDir:    s.dataDir,
		Keyring:    s.keyring,
		Logger:     slog.New(slog.NewTextHandler(in.logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Notifier:   in.notes,
		NewUI: func(c app.Core) (app.UI, error) {
			built <- c
			return fakeUI{}, nil
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	in.cancel = cancel
	go func() { in.done <- app.Run(ctx, o) }()
	t.Cleanup(func() { in.stop(t) })
	select {
	case in.core = <-built:
	case err := <-in.done:
		in.stopped = true
		cancel()
		return nil, fmt.Errorf("Run returned before it served: %w", err)
	case <-time.After(60 * time.Second):
		t.Fatal("the app did not start within a minute")
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
		if err == nil {
			c.Close()
			return in, nil
		}
		if time.Now().After(deadline) {
			t.Fatal("the app never listened")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop ends the app as quitting does and returns Run's error.
func (in *instance) stop(t *testing.T) error {
	t.Helper()
	if in.stopped {
		return nil
	}
	in.stopped = true
	in.cancel()
	select {
	case err := <-in.done:
		return err
	case <-time.After(60 * time.Second):
		t.Error("Run did not return within a minute of being stopped")
		return nil
	}
}

// stopHolding stops the app while it holds calls (held says how) and
// fails the test unless Run returns, without an error, within 90 s.
func (in *instance) stopHolding(t *testing.T, held string) {
	t.Helper()
	stopped := make(chan error, 1)
	go func() { stopped <- in.stop(t) }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("Run did not return within 90 s of being stopped with %s", held)
	}
}

// stopCleanly stops the app as stop does and fails the test, going on,
// when Run returns an error.
func (in *instance) stopCleanly(t *testing.T) {
	t.Helper()
	if err := in.stop(t); err != nil {
		t.Errorf("Run: %v", err)
	}
}

func (in *instance) url(server string) string {
	return fmt.Sprintf("http://127.0.0.1:%d/servers/%s/mcp", in.port, server)
}

// newHost is an AI app's session, not yet opened, with server on in.
func (in *instance) newHost(hc *http.Client, server string) *host {
	return &host{url: in.url(server), token: in.token, hc: hc}
}

// openSession opens an AI app's session with server on in and fails the
// test when it cannot.
func (in *instance) openSession(t *testing.T, hc *http.Client, server string) *host {
	t.Helper()
	h := in.newHost(hc, server)
	if err := h.open(context.Background(), "reliability-host"); err != nil {
		t.Fatal(err)
	}
	return h
}

// host is an AI app's session with Countersign over Streamable HTTP.
type host struct {
	url   string
	token string
	sid   string
	hc    *http.Client
}

// newClient is an HTTP client for AI apps' sessions; the test's end
// closes its idle connections.
func newClient(t *testing.T) *http.Client {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxIdleConns: 512, IdleConnTimeout: 30 * time.Second}}
	t.Cleanup(hc.CloseIdleConnections)
	return hc
}

func (h *host) post(ctx context.Context, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+h.token)
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Content-Type", "application/json")
	if h.sid != "" {
		req.Header.Set("Mcp-Session-Id", h.sid)
		req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	}
	return h.hc.Do(req)
}

// open starts a session: initialize, then notifications/initialized.
func (h *host) open(ctx context.Context, client string) error {
	init := fmt.Sprintf(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":%q,"version":"1"}}}`, client)
	resp, err := h.post(ctx, []byte(init))
	if err != nil {
		return err
	}
	msgs, err := readMessages(resp)
	if err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	if resp.StatusCode != http.StatusOK || len(msgs) != 1 || msgs[0].Result == nil {
		return fmt.Errorf("initialize: status %d, %d messages", resp.StatusCode, len(msgs))
	}
	h.sid = resp.Header.Get("Mcp-Session-Id")
	if h.sid == "" {
		return errors.New("initialize: no session id")
	}
	return h.notify(ctx, "notifications/initialized", nil)
}

// notify sends a notification; Countersign answers 202.
func (h *host) notify(ctx context.Context, method string, params any) error {
	m := map[string]any{"jsonrpc": "2.0", "method": method}
	if params != nil {
		m["params"] = params
	}
	b, _ := json.Marshal(m)
	resp, err := h.post(ctx, b)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("%s: status %d", method, resp.StatusCode)
	}
	return nil
}

// close ends the session with DELETE, as a well-behaved AI app does.
func (h *host) close() {
	req, _ := http.NewRequest(http.MethodDelete, h.url, nil)
	req.Header.Set("Authorization", "Bearer "+h.token)
	req.Header.Set("Mcp-Session-Id", h.sid)
	if resp, err := h.hc.Do(req); err == nil {
		resp.Body.Close()
	}
}

// message is one JSON-RPC message as the host received it.
type message struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// toolResult is a tools/call result.
type toolResult struct {
	IsError bool `json:"isError"`
	Content []struct {
		Text string `json:"text"`
	} `json:"content"`
}

// text is what an answer says: a tool result's text or an error's message.
func (m message) text() (string, bool) {
	if m.Error != nil {
		return m.Error.Message, true
	}
	var r toolResult
	json.Unmarshal(m.Result, &r)
	var b strings.Builder
	for _, c := range r.Content {
		b.WriteString(c.Text)
	}
	return b.String(), r.IsError
}

// call sends a tools/call and returns every answer to it that the
// response held; err says why the response ended early.
func (h *host) call(ctx context.Context, id int, tool string, args any) ([]message, error) {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": "tools/call",
		"params": map[string]any{"name": tool, "arguments": args}})
	resp, err := h.post(ctx, b)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	msgs, err := readMessages(resp)
	want := strconv.Itoa(id)
	var answers []message
	for _, m := range msgs {
		if string(m.ID) == want && m.Method == "" {
			answers = append(answers, m)
		}
	}
	return answers, err
}

// readMessages reads a JSON or event-stream response to its end.
func readMessages(resp *http.Response) ([]message, error) {
	defer resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(b)) == 0 {
			return nil, nil
		}
		var m message
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("reading %q: %w", b, err)
		}
		return []message{m}, nil
	}
	var msgs []message
	var data bytes.Buffer
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "data:"):
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		case line == "" && data.Len() > 0:
			var m message
			if err := json.Unmarshal(data.Bytes(), &m); err != nil {
				return msgs, fmt.Errorf("reading event %q: %w", data.Bytes(), err)
			}
			msgs = append(msgs, m)
			data.Reset()
		}
	}
	return msgs, sc.Err()
}

// approver is the scripted person: it watches the review queue and acts on
// each call as decide says.
type approver struct {
	q    *gate.Queue
	sub  *gate.Subscription
	done chan struct{}
}

// startApprover calls act for each call that starts waiting, on a
// goroutine of its own.
func startApprover(q *gate.Queue, act func(gate.Call)) *approver {
	a := &approver{q: q, sub: q.Subscribe(), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		var wg sync.WaitGroup
		for ev := range a.sub.Events() {
			if ev.Kind == gate.EventAdded {
				wg.Go(func() { act(ev.Call) })
			}
		}
		wg.Wait()
	}()
	return a
}

func (a *approver) stop() {
	a.sub.Close()
	<-a.done
}

// auditRecords reads every record of the audit log at path, oldest first,
// after the app has stopped, and verifies its chain.
func auditRecords(t *testing.T, dataDir string) []audit.Record {
	t.Helper()
	path := filepath.Join(dataDir, "audit.db")
	ctx := context.Background()
	rep, err := audit.VerifyFile(ctx, path)
	if err != nil {
		t.Fatalf("verifying the audit log: %v", err)
	}
	if !rep.OK() {
		t.Errorf("the audit chain does not verify: %s", rep)
	}
	l, err := audit.Open(path, audit.Options{RetentionDays: -1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var recs []audit.Record
	var before int64
	for {
		p, err := l.Query(ctx, audit.Filter{}, before, audit.MaxPageSize)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, p.Records...)
		if !p.More {
			break
		}
		before = p.Next
	}
	for i, j := 0, len(recs)-1; i < j; i, j = i+1, j-1 {
		recs[i], recs[j] = recs[j], recs[i]
	}
	return recs
}

// callStory is what the audit says about one tool call.
type callStory struct {
	submitted []audit.Record
	decided   []audit.Record
	forwarded []audit.Record
	results   []audit.Record
	denied    []audit.Record // policy_denied
}

// stories groups the call records by call id.
func stories(recs []audit.Record) map[string]*callStory {
	out := map[string]*callStory{}
	get := func(id string) *callStory {
		s := out[id]
		if s == nil {
			s = &callStory{}
			out[id] = s
		}
		return s
	}
	for _, r := range recs {
		if r.CallID == "" {
			continue
		}
		s := get(r.CallID)
		switch r.Kind {
		case audit.KindCallSubmitted:
			s.submitted = append(s.submitted, r)
		case audit.KindCallDecided:
			s.decided = append(s.decided, r)
		case audit.KindCallForwarded:
			s.forwarded = append(s.forwarded, r)
		case audit.KindCallResult:
			s.results = append(s.results, r)
		case audit.KindPolicyDenied:
			s.denied = append(s.denied, r)
		}
	}
	return out
}

// argMessage is the "message" argument of a recorded call.
func argMessage(raw json.RawMessage) string {
	var a struct {
		Message string `json:"message"`
	}
	json.Unmarshal(raw, &a)
	return a.Message
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rssKB is the test process's resident memory in kB (Linux), 0 elsewhere.
func rssKB() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}
