// Package peers tests the relay against real MCP peers from the npm
// registry: @modelcontextprotocol/server-everything upstream, a client built
// on @modelcontextprotocol/sdk downstream, and the conformance suite.
// scripts/test installs them and sets COUNTERSIGN_PEERS.
package peers

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/relay"
	"github.com/countersign/countersign/internal/testenv"
	"github.com/countersign/countersign/internal/transport"
)

const token = "feedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedface"

// peersDir is where the npm peers are installed; the test is skipped
// without them, and fails under CI.
func peersDir(t *testing.T) string {
	t.Helper()
	return testenv.NeedPeers(t, "the peer tests")
}

// startEverything runs server-everything in an HTTP mode on loopback and
// returns its URL.
func startEverything(t *testing.T, dir, mode string) string {
	t.Helper()
	port := testenv.StartEverything(t, dir, mode)
	path := "/mcp"
	if mode == "sse" {
		path = "/sse"
	}
	return "http://127.0.0.1:" + strconv.Itoa(port) + path
}

// approver is the scripted person: it approves every call and records what
// it was asked.
type approver struct {
	token string // the local token the relay wants

	mu    sync.Mutex
	calls []gate.Call
	ended []gate.Verdict
}

func (a *approver) tools() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, c := range a.calls {
		out = append(out, c.Tool)
	}
	return out
}

// startRelay runs the relay on loopback in front of upstream, with a person
// who approves everything after a short look, and returns its endpoint.
func startRelay(t *testing.T, upstream relay.Server, decide func(gate.Call) gate.Decision) (string, *approver) {
	t.Helper()
	return startRelayWithToken(t, upstream, token, decide)
}

// startRelayWithToken is startRelay with the local token tok.
func startRelayWithToken(t *testing.T, upstream relay.Server, tok string, decide func(gate.Call) gate.Decision) (string, *approver) {
	t.Helper()
	q := gate.New(gate.Options{})
	hs := httptest.NewUnstartedServer(nil)
	port := hs.Listener.Addr().(*net.TCPAddr).Port
	r, err := relay.New(relay.Options{Servers: []relay.Server{upstream}, Gate: q, Token: tok, Port: port, KeepAlive: time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	hs.Config.Handler = r
	hs.Start()
	a := &approver{token: tok}
	sub := q.Subscribe()
	go func() {
		for ev := range sub.Events() {
			a.mu.Lock()
			if ev.Kind == gate.EventAdded {
				a.calls = append(a.calls, ev.Call)
			} else {
				a.ended = append(a.ended, ev.Verdict)
			}
			a.mu.Unlock()
			if ev.Kind == gate.EventAdded {
				go func(c gate.Call) {
					time.Sleep(20 * time.Millisecond) // long enough for the host to see it wait
					q.Decide(c.ID, decide(c))
				}(ev.Call)
			}
		}
	}()
	t.Cleanup(func() {
		hs.CloseClientConnections()
		r.Close()
		hs.Close()
		q.Close()
	})
	return "http://127.0.0.1:" + strconv.Itoa(port) + "/servers/" + upstream.ID + "/mcp", a
}

func approveAll(gate.Call) gate.Decision { return gate.Decision{Approve: true} }

type scenarioResult struct {
	Scenario string          `json:"scenario"`
	OK       bool            `json:"ok"`
	Detail   json.RawMessage `json:"detail"`
}

// runClient runs client.mjs against url and returns its results by
// scenario; a failed scenario fails the test unless wantFail.
func runClient(t *testing.T, dir, url string, wantFail bool, scenarios ...string) map[string]scenarioResult {
	t.Helper()
	return runClientWith(t, dir, url, nil, wantFail, scenarios...)
}

// runClientArgs is runClient with more of client.mjs's options, for
// scenarios that must pass.
func runClientArgs(t *testing.T, dir, url string, extra []string, scenarios ...string) map[string]scenarioResult {
	t.Helper()
	return runClientWith(t, dir, url, extra, false, scenarios...)
}

func runClientWith(t *testing.T, dir, url string, extra []string, wantFail bool, scenarios ...string) map[string]scenarioResult {
	t.Helper()
	args := append([]string{filepath.Join(dir, "client.mjs"), "--url", url, "--token", token}, extra...)
	for _, s := range scenarios {
		args = append(args, "--scenario", s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	results := map[string]scenarioResult{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var r scenarioResult
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Scenario != "" {
			results[r.Scenario] = r
		}
	}
	if (err != nil) != wantFail {
		t.Errorf("client.mjs: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	return results
}

var allScenarios = []string{"echo", "structured", "resource-links", "progress", "sampling", "elicitation", "roots", "list"}

// TestEverythingThroughRelay drives every scenario through the relay, for
// each transport server-everything speaks, and checks each tool call was
// held for the person.
func TestEverythingThroughRelay(t *testing.T) {
	dir := peersDir(t)
	for _, mode := range []string{"streamableHttp", "sse", "stdio"} {
		t.Run(mode, func(t *testing.T) {
			upstream := everythingUpstream(t, dir, mode)
			endpoint, person := startRelay(t, upstream, approveAll)
			results := runClient(t, dir, endpoint, false, allScenarios...)
			for _, s := range allScenarios {
				if r, ok := results[s]; !ok || !r.OK {
					t.Errorf("scenario %s: %+v", s, r)
				}
			}
			held := strings.Join(person.tools(), ",")
			for _, tool := range []string{"echo", "get-structured-content", "get-resource-links", "trigger-long-running-operation", "trigger-sampling-request", "trigger-elicitation-request", "get-roots-list"} {
				if !strings.Contains(held, tool) {
					t.Errorf("%s was not held for approval (held: %s)", tool, held)
				}
			}
			// The long-running call carried a progressToken: while it was
			// held the host must have heard it is waiting for approval.
			if !bytes.Contains(results["progress"].Detail, []byte("Waiting for approval in Countersign")) {
				t.Errorf("no waiting-for-approval progress reached the host: %s", results["progress"].Detail)
			}
		})
	}
}

// TestDeniedCallReachesRealClientAsError checks a real SDK client sees a
// denial as a tool error result, and the upstream never ran the call.
func TestDeniedCallReachesRealClientAsError(t *testing.T) {
	dir := peersDir(t)
	url := startEverything(t, dir, "streamableHttp")
	upstream := relay.Server{ID: "everything", Dial: func(context.Context) (transport.Conn, error) {
		return transport.NewStreamableHTTP(transport.HTTPOptions{URL: url}), nil
	}}
	endpoint, _ := startRelay(t, upstream, func(gate.Call) gate.Decision { return gate.Decision{Reason: "test says no"} })
	results := runClient(t, dir, endpoint, true, "echo")
	r := results["echo"]
	if r.OK || !bytes.Contains(r.Detail, []byte("Denied in Countersign by the user: test says no")) {
		t.Fatalf("echo after denial: %+v", r)
	}
}
