package peers

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/audit"
	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/hostwait"
	"github.com/countersign/countersign/internal/policy"
	"github.com/countersign/countersign/internal/relay"
)

// hostTimeout is the real SDK client's own request timeout in these tests,
// standing in for an AI app's 60 seconds.
const hostTimeout = 3 * time.Second

// TestApprovalOutlastsTheAIAppsTimeout: real TypeScript SDK clients, each
// with its own short request timeout, call a tool the person takes longer
// than that to approve.
//
// One uses the SDK's defaults (no progress): Countersign answers "waiting
// for approval, call again" before its timeout, the call stays in review,
// the person approves it, and the client's identical call runs without a
// second review, audited as approved earlier by the person. The other
// restarts its timer on progress: Countersign's waiting progress keeps it
// listening, and it simply gets the result.
// waitingRelay is the relay and guard in front of upstream, with AI apps'
// time limits from hosts, an audit log, and a person who approves a call
// the AI app stopped waiting for at once, and any other only after the AI
// app's own timeout has passed.
type waitingRelay struct {
	endpoint string
	audit    *audit.Log

	mu    sync.Mutex
	asked []string // the AI app of each call the person was asked about
	late  int      // calls the AI app stopped waiting for
}

func startWaitingRelay(t *testing.T, upstream relay.Server, tok string, hosts []hostwait.Host) *waitingRelay {
	t.Helper()
	auditLog, err := audit.Open(filepath.Join(t.TempDir(), "audit.db"), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	q := gate.New(gate.Options{})
	g := guard.New(guard.Options{Queue: q, Audit: auditLog, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	g.SetPolicies(map[string]*policy.Policy{upstream.ID: {}})
	hs := httptest.NewUnstartedServer(nil)
	port := hs.Listener.Addr().(*net.TCPAddr).Port
	r, err := relay.New(relay.Options{Servers: []relay.Server{upstream}, Gate: g, Filter: g, Token: tok, Port: port,
		KeepAlive: 500 * time.Millisecond,
		HostWait:  hostwait.Default().With(hosts),
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	hs.Config.Handler = r
	hs.Start()
	w := &waitingRelay{endpoint: "http://127.0.0.1:" + strconv.Itoa(port) + "/servers/" + upstream.ID + "/mcp", audit: auditLog}
	sub := q.Subscribe()
	go func() {
		for ev := range sub.Events() {
			switch ev.Kind {
			case gate.EventAdded:
				w.mu.Lock()
				w.asked = append(w.asked, ev.Call.Client)
				w.mu.Unlock()
				go func(id string) {
					time.Sleep(hostTimeout + time.Second)
					q.Decide(id, gate.Decision{Approve: true})
				}(ev.Call.ID)
			case gate.EventHostGone:
				w.mu.Lock()
				w.late++
				w.mu.Unlock()
				q.Decide(ev.Call.ID, gate.Decision{Approve: true})
			}
		}
	}()
	t.Cleanup(func() {
		hs.CloseClientConnections()
		r.Close()
		hs.Close()
		sub.Close()
		q.Close()
		auditLog.Close()
	})
	return w
}

// checkAskedOnce fails unless the person was asked about exactly one call
// from each of clients, and saw late calls the AI app stopped waiting for.
func (w *waitingRelay) checkAskedOnce(t *testing.T, late int, clients ...string) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if got := strings.Join(w.asked, ","); got != strings.Join(clients, ",") || w.late != late {
		t.Fatalf("the person was asked about calls from %s and saw %d the AI app stopped waiting for; want %s and %d", got, w.late, strings.Join(clients, ","), late)
	}
}

// checkRetryStory fails unless the audit tells the retry's story for
// client: told to call again, approved late by the person, and the retry
// run under that approval, naming its event.
func (w *waitingRelay) checkRetryStory(t *testing.T, client string) {
	t.Helper()
	page, err := w.audit.Query(context.Background(), audit.Filter{Client: client}, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var story []string
	var approvedLate int64
	for i := len(page.Records) - 1; i >= 0; i-- {
		rec := page.Records[i]
		if rec.Kind != audit.KindCallDecided {
			continue
		}
		story = append(story, string(rec.Outcome)+"/"+string(rec.Actor))
		if strings.HasPrefix(rec.Reason, "Approved after the AI app stopped waiting") {
			approvedLate = rec.ID
		}
		if strings.HasPrefix(rec.Reason, "Approved earlier by the person") && !strings.Contains(rec.Reason, fmt.Sprintf("(event %d,", approvedLate)) {
			t.Errorf("the retry's record names another event than the approval (%d): %s", approvedLate, rec.Reason)
		}
	}
	if want := "asked_to_call_again/app,approved/person,approved/person"; strings.Join(story, ",") != want {
		t.Errorf("decisions in the audit: %s, want %s", strings.Join(story, ","), want)
	}
}

func TestApprovalOutlastsTheAIAppsTimeout(t *testing.T) {
	dir := peersDir(t)
	w := startWaitingRelay(t, everythingUpstream(t, dir, "streamableHttp"), token, []hostwait.Host{{Match: "short-host", Budget: hostTimeout}})
	timeout := []string{"--host-timeout-ms", strconv.Itoa(int(hostTimeout.Milliseconds()))}
	if r := runClientArgs(t, dir, w.endpoint, append([]string{"--name", "short-host"}, timeout...), "retry-after-timeout")["retry-after-timeout"]; !r.OK {
		t.Fatalf("retry-after-timeout: %s", r.Detail)
	}
	if r := runClientArgs(t, dir, w.endpoint, append([]string{"--name", "patient-host"}, timeout...), "patient")["patient"]; !r.OK {
		t.Fatalf("patient: %s", r.Detail)
	}
	w.checkAskedOnce(t, 1, "short-host", "patient-host")
	w.checkRetryStory(t, "short-host")
}

// TestApprovalOutlastsClaudeDesktopThroughTheBridge: Claude Desktop starts
// countersign-bridge as a local server and gives it its own time limit
// (60 seconds, shortened here by the table). The bridge says it is the
// bridge, so that limit applies: the first call is answered "call again"
// in time, and the retry runs under the person's approval.
func TestApprovalOutlastsClaudeDesktopThroughTheBridge(t *testing.T) {
	dir := peersDir(t)
	_, tok, bin := bridgeWithToken(t)
	// Only the bridge's way in is short: through plain HTTP, Claude's
	// limit is the built-in 4 minutes, and the client would time out.
	w := startWaitingRelay(t, everythingUpstream(t, dir, "streamableHttp"), tok,
		[]hostwait.Host{{Match: "claude", Via: hostwait.ViaBridge, Budget: hostTimeout}})
	port, err := relayPort(w.endpoint)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.Port = port
	cfg.Servers = []config.Server{{ID: "everything", Transport: config.TransportStreamableHTTP, URL: "http://127.0.0.1:1/mcp"}}
	b, err := cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	settings := filepath.Join(t.TempDir(), "settings.json")
	if err := os.WriteFile(settings, b, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{filepath.Join(dir, "client.mjs"), "--stdio", bin + " -config " + settings + " everything",
		"--name", "claude-ai", "--host-timeout-ms", strconv.Itoa(int(hostTimeout.Milliseconds())), "--scenario", "retry-after-timeout"}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "node", args...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"ok":true`) {
		t.Fatalf("client.mjs through the bridge: %v\n%s", err, out)
	}
	w.checkAskedOnce(t, 1, "claude-ai")
	w.checkRetryStory(t, "claude-ai")
}
