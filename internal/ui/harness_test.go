package ui

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/countersign/countersign/internal/app"
	"github.com/countersign/countersign/internal/clocktest"
	"github.com/countersign/countersign/internal/gate"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestMain(m *testing.M) {
	time.Local = time.UTC // goldens show clock times
	os.Exit(m.Run())
}

// assertMarkup compares a canvas with testdata/<name>, or rewrites it with
// -update. A missing golden fails; a mismatch is written to
// testdata/failed/<name>.
func assertMarkup(t *testing.T, name string, c fyne.Canvas) {
	t.Helper()
	if *update {
		path := filepath.Join("testdata", name)
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(test.RenderToMarkup(c)), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	test.AssertRendersToMarkup(t, name, c)
}

// T0 is the fake clock's start.
var T0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

// uiQueue runs what the interface hands to the UI goroutine on the test's
// goroutine, when the test drains it.
type uiQueue struct {
	mu    sync.Mutex
	funcs []func()
	wake  chan struct{}
}

func (q *uiQueue) do(f func()) {
	q.mu.Lock()
	q.funcs = append(q.funcs, f)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// drain runs the queued functions once; it reports whether there were any.
func (q *uiQueue) drain() bool {
	q.mu.Lock()
	fs := q.funcs
	q.funcs = nil
	q.mu.Unlock()
	for _, f := range fs {
		f()
	}
	return len(fs) > 0
}

// harness is the interface on Fyne's test app, driven from the test's
// goroutine, which plays the UI goroutine.
type harness struct {
	t        *testing.T
	d        *Desktop
	q        Queue
	clock    *clocktest.Clock
	ui       *uiQueue
	settings *fakeSettings
	audit    *fakeAudit
}

func newHarness(t *testing.T, q Queue) *harness {
	t.Helper()
	a := test.NewTempApp(t)
	h := &harness{t: t, q: q, clock: clocktest.New(T0), ui: &uiQueue{wake: make(chan struct{}, 1)},
		settings: newFakeSettings(), audit: &fakeAudit{}}
	h.d = New(a, Options{
		Queue:    q,
		Settings: h.settings,
		Audit:    h.audit,
		Tray:     true,
		Now:      h.clock.Now,
		Do:       h.ui.do,
	})
	h.d.start()
	t.Cleanup(func() {
		h.d.stop()
	})
	h.settle()
	return h
}

// waitFor runs UI work until cond holds.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		h.ui.drain()
		if cond() {
			return
		}
		select {
		case <-h.ui.wake:
		case <-time.After(5 * time.Millisecond):
		case <-deadline:
			h.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// settle runs UI work until none arrives for a moment.
func (h *harness) settle() {
	for quiet := 0; quiet < 5; {
		if h.ui.drain() {
			quiet = 0
		} else {
			quiet++
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// realQueue is a gate queue whose calls tests submit and whose verdicts they
// read.
type realQueue struct {
	*gate.Queue
	verdicts chan gate.Verdict
}

func newRealQueue(t *testing.T, timeout time.Duration) *realQueue {
	q := &realQueue{Queue: gate.New(gate.Options{Timeout: timeout}), verdicts: make(chan gate.Verdict, 100)}
	t.Cleanup(q.Close)
	return q
}

// submit starts a call that waits for a decision; cancel ends it as the
// AI app cancelling.
func (q *realQueue) submit(c gate.Call) (cancel func()) {
	ctx, stop := context.WithCancelCause(context.Background())
	go func() { q.verdicts <- q.Submit(ctx, c) }()
	return func() { stop(gate.ErrHostCancelled) }
}

func (q *realQueue) verdict(t *testing.T) gate.Verdict {
	t.Helper()
	select {
	case v := <-q.verdicts:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("no verdict")
	}
	return gate.Verdict{}
}

// fixedQueue shows fixed calls (with fixed times, for goldens) and records
// decisions.
type fixedQueue struct {
	*gate.Queue
	calls   []gate.Call
	decided map[string]gate.Decision
}

func newFixedQueue(t *testing.T, calls ...gate.Call) *fixedQueue {
	q := &fixedQueue{Queue: gate.New(gate.Options{}), calls: calls, decided: map[string]gate.Decision{}}
	t.Cleanup(q.Close)
	return q
}

func (q *fixedQueue) Pending() []gate.Call { return q.calls }

func (q *fixedQueue) Decide(id string, d gate.Decision) error {
	for _, c := range q.calls {
		if c.ID == id {
			if _, done := q.decided[id]; done {
				return gate.ErrNotPending
			}
			if d.Approve && d.Arguments != nil { // as gate.Queue.Decide
				if c.Check == nil {
					return &gate.EditRefusedError{Reason: "no check"}
				}
				if err := c.Check(d.Arguments); err != nil {
					return &gate.EditRefusedError{Reason: err.Error()}
				}
			}
			q.decided[id] = d
			return nil
		}
	}
	return gate.ErrNotPending
}

func ptr[T any](v T) *T { return &v }

// createIssue is a call as the policy code fills it in: a destructive tool
// with a title, a target, and a warning.
func createIssue(id string, received time.Time) gate.Call {
	return gate.Call{
		ID: id, Server: "github", ServerName: "GitHub", Tool: "create_issue", Client: "Claude Desktop",
		Arguments: []byte(`{"owner":"DEFRA","repo":"ffc-pay","title":"Fix login","body":"The login page\nloops.","labels":["bug","p1"],"assignees":[]}`),
		Received:  received, Deadline: received.Add(5 * time.Minute),
		Info: &gate.ToolInfo{Title: "Create Issue", Description: "Create a new issue in a GitHub repository.",
			InputSchema:     []byte(`{"type":"object","properties":{"owner":{"type":"string"},"repo":{"type":"string"},"title":{"type":"string","minLength":1},"body":{"type":"string"},"labels":{"type":"array","items":{"type":"string"}},"assignees":{"type":"array"}},"required":["owner","repo","title"]}`),
			DestructiveHint: ptr(false), OpenWorldHint: ptr(true)},
		Targets: []string{"DEFRA/ffc-pay"},
		Warnings: []gate.Warning{{Kind: gate.WarnSecret, Text: "The body contains something that looks like an AWS access key.",
			Detail: "body: AKIA…(20 characters)"}},
	}
}

// listIssues is a read-only call with no target known.
func listIssues(id string, received time.Time) gate.Call {
	return gate.Call{
		ID: id, Server: "jira", ServerName: "Jira", Tool: "searchJiraIssuesUsingJql", Client: "Cursor",
		Arguments: []byte(`{"jql":"project = PAY","maxResults":50}`),
		Received:  received, Deadline: received.Add(5 * time.Minute),
		Info: &gate.ToolInfo{Description: "Search issues with JQL.", ReadOnlyHint: ptr(true)},
	}
}

// fakeSettings is a SettingsService in memory.
type fakeSettings struct {
	mu        sync.Mutex
	servers   []app.ServerStatus
	allow     map[string]app.Allowlist
	timeout   app.TimeoutSetting
	login     app.LoginSetting
	signedIn  map[string]bool
	signInErr error // SignIn fails with it when set
	failSave  error
	allowSets [][]string
	servers2  serverEdits         // adding, removing and tokens (addserver_test.go)
	outside   fakeOutside         // a settings change made outside the app (outside_test.go)
	catalog   []app.CatalogChoice // nil: testCatalog
	aws       fakeAWS             // AWS accounts and roles (awsrole_test.go)
}

func newFakeSettings() *fakeSettings {
	return &fakeSettings{
		servers: []app.ServerStatus{
			{ID: "github", Name: "GitHub", Transport: "streamable-http", Endpoint: "https://api.githubcopilot.com/mcp/", State: "Not signed in"},
			{ID: "local", Name: "Local files", Transport: "stdio", Endpoint: "node server.js", State: "Runs on this computer",
				SignInUnavailable: "This server runs on this computer, so there is nothing to sign in to."},
		},
		allow: map[string]app.Allowlist{
			"github": {Kind: "repositories", Example: "DEFRA/ffc-*", Entries: []app.AllowEntry{
				{Pattern: "DEFRA/*", Locked: true}, {Pattern: "me/scratch"}}},
			"local": {Unavailable: "This server does not touch repositories or projects."},
		},
		timeout:  app.TimeoutSetting{Value: 5 * time.Minute, Min: 10 * time.Second, Max: 24 * time.Hour},
		signedIn: map[string]bool{},
	}
}

func (f *fakeSettings) Servers(context.Context) ([]app.ServerStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := append([]app.ServerStatus(nil), f.servers...)
	for i := range out {
		if f.signedIn[out[i].ID] {
			out[i].SignedIn, out[i].State, out[i].Scopes = true, "Signed in", []string{"repo", "read:org"}
		}
	}
	return out, nil
}

func (f *fakeSettings) SignIn(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.signInErr != nil {
		return f.signInErr
	}
	f.signedIn[id] = true
	return nil
}

func (f *fakeSettings) SignOut(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.signedIn, id)
	return nil
}

func (f *fakeSettings) Allowlist(_ context.Context, id string) (app.Allowlist, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.allow[id], nil
}

func (f *fakeSettings) CheckAllowEntry(id, p string) error {
	if len(p) < 3 || p[0] == '/' {
		return errString("write owner/repository, like DEFRA/ffc-pay or DEFRA/ffc-*")
	}
	return nil
}

func (f *fakeSettings) SetAllowlist(_ context.Context, id string, patterns []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failSave != nil {
		return f.failSave
	}
	f.allowSets = append(f.allowSets, patterns)
	al := f.allow[id]
	var entries []app.AllowEntry
	for _, e := range al.Entries {
		if e.Locked {
			entries = append(entries, e)
		}
	}
	for _, p := range patterns {
		entries = append(entries, app.AllowEntry{Pattern: p})
	}
	al.Entries = entries
	f.allow[id] = al
	return nil
}

func (f *fakeSettings) Timeout(context.Context) (app.TimeoutSetting, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.timeout, nil
}

func (f *fakeSettings) SetTimeout(_ context.Context, d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.timeout.Value = d
	return nil
}

func (f *fakeSettings) StartAtLogin(context.Context) (app.LoginSetting, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.login, nil
}

func (f *fakeSettings) SetStartAtLogin(_ context.Context, on bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.login.On = on
	return nil
}

type errString string

func (e errString) Error() string { return string(e) }
