package peers

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/audit"
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
func TestApprovalOutlastsTheAIAppsTimeout(t *testing.T) {
	dir := peersDir(t)
	upstream := everythingUpstream(t, dir, "streamableHttp")
	auditLog, err := audit.Open(filepath.Join(t.TempDir(), "audit.db"), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer auditLog.Close()
	q := gate.New(gate.Options{})
	g := guard.New(guard.Options{Queue: q, Audit: auditLog, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	g.SetPolicies(map[string]*policy.Policy{upstream.ID: {}})
	hs := httptest.NewUnstartedServer(nil)
	port := hs.Listener.Addr().(*net.TCPAddr).Port
	r, err := relay.New(relay.Options{Servers: []relay.Server{upstream}, Gate: g, Filter: g, Token: token, Port: port,
		KeepAlive: 500 * time.Millisecond,
		HostWait:  hostwait.Default().With([]hostwait.Host{{Match: "short-host", Budget: hostTimeout}}),
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	hs.Config.Handler = r
	hs.Start()
	defer func() { hs.CloseClientConnections(); r.Close(); hs.Close(); q.Close() }()
	endpoint := "http://127.0.0.1:" + strconv.Itoa(port) + "/servers/" + upstream.ID + "/mcp"

	// The person: approves a call the AI app stopped waiting for at once,
	// and any other only after the AI app's own timeout has passed.
	var asked, late []string
	sub := q.Subscribe()
	go func() {
		for ev := range sub.Events() {
			switch ev.Kind {
			case gate.EventAdded:
				asked = append(asked, ev.Call.Client)
				if ev.Call.Client != "short-host" {
					go func(id string) {
						time.Sleep(hostTimeout + time.Second)
						q.Decide(id, gate.Decision{Approve: true})
					}(ev.Call.ID)
				}
			case gate.EventHostGone:
				late = append(late, ev.Call.ID)
				q.Decide(ev.Call.ID, gate.Decision{Approve: true})
			}
		}
	}()

	run := func(name, scenario string) scenarioResult {
		t.Helper()
		args := []string{"--name", name, "--host-timeout-ms", strconv.Itoa(int(hostTimeout.Milliseconds()))}
		res := runClientArgs(t, dir, endpoint, args, scenario)
		return res[scenario]
	}
	if r := run("short-host", "retry-after-timeout"); !r.OK {
		t.Fatalf("retry-after-timeout: %s", r.Detail)
	}
	if r := run("patient-host", "patient"); !r.OK {
		t.Fatalf("patient: %s", r.Detail)
	}
	sub.Close()
	if got := strings.Join(asked, ","); got != "short-host,patient-host" || len(late) != 1 {
		t.Fatalf("the person was asked for %s and saw %d calls the AI app stopped waiting for; want one each, and one", got, len(late))
	}

	// The audit tells the story of the retry.
	page, err := auditLog.Query(context.Background(), audit.Filter{Client: "short-host"}, 0, 100)
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
