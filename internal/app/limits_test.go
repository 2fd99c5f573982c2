package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/config"
	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/relay"
	"github.com/countersign/countersign/internal/testenv"
	"github.com/countersign/countersign/internal/transport"
	"github.com/countersign/countersign/internal/vault/vaulttest"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

func TestPolicyLimitsMapToTheRelayAndTheServers(t *testing.T) {
	want := Limits{CallTimeout: relay.DefaultCallTimeout, MaxRequest: relay.DefaultMaxMessage, MaxInFlight: relay.DefaultMaxInFlight,
		MaxServerAnswer: transport.DefaultMaxMessage, MaxSessionsPerAIApp: relay.DefaultMaxSessionsPerClient, SetByPolicy: []string{}}
	for _, p := range []*config.Policy{nil, {Version: 1}} {
		if got := LimitsFor(p); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("without limits in the policy: %+v, want the built-in %+v", got, want)
		}
	}
	p, err := config.ParsePolicy([]byte(`{"version": 1, "limits": {"callTimeoutMinutes": 25, "maxRequestMB": 16, "maxServerAnswerMB": 2, "maxSessionsPerAIApp": 3}}`))
	if err != nil {
		t.Fatal(err)
	}
	got := LimitsFor(p)
	want = Limits{CallTimeout: 25 * time.Minute, MaxRequest: 16 << 20, MaxInFlight: 64 << 20, MaxServerAnswer: 2 << 20, MaxSessionsPerAIApp: 3,
		SetByPolicy: []string{"callTimeoutMinutes", "maxRequestMB", "maxServerAnswerMB", "maxSessionsPerAIApp"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("LimitsFor = %+v, want %+v", got, want)
	}
	if r := got.relay(); r != (relay.Limits{CallTimeout: 25 * time.Minute, MaxMessage: 16 << 20, MaxInFlight: 64 << 20, MaxSessionsPerClient: 3}) {
		t.Fatalf("relay limits %+v", r)
	}
	// A lower request limit keeps the built-in budget for all messages.
	one := 1
	if got := LimitsFor(&config.Policy{Version: 1, Limits: config.LimitsPolicy{MaxRequestMB: &one}}); got.MaxInFlight != relay.DefaultMaxInFlight {
		t.Fatalf("in flight %d under a 1 MB limit, want the built-in %d", got.MaxInFlight, relay.DefaultMaxInFlight)
	}
}

// TestBuiltInLimitsAreWithinThePolicyRanges: the policy's ranges hold the
// figures Countersign uses by default, and a policy cannot give one AI app
// more sessions than all AI apps may have (config cannot import the relay).
func TestBuiltInLimitsAreWithinThePolicyRanges(t *testing.T) {
	for field, v := range map[string]int{
		"limits.callTimeoutMinutes":  int(relay.DefaultCallTimeout / time.Minute),
		"limits.maxRequestMB":        relay.DefaultMaxMessage >> 20,
		"limits.maxServerAnswerMB":   transport.DefaultMaxMessage >> 20,
		"limits.maxSessionsPerAIApp": relay.DefaultMaxSessionsPerClient,
	} {
		r := config.PolicyIntRange[field]
		if v < r.Min || v > r.Max {
			t.Errorf("%s: the built-in %d is outside the policy's %d to %d", field, v, r.Min, r.Max)
		}
	}
	if config.MaxSessionsPerAIApp > relay.DefaultMaxSessions {
		t.Errorf("a policy may allow %d sessions per AI app, more than the %d of all", config.MaxSessionsPerAIApp, relay.DefaultMaxSessions)
	}
}

// TestTheLimitsInForceAreThePolicys runs the app with a policy that lowers
// the largest message from an AI app and from a server to 1 MB: a 2 MB
// request gets the 413, a tool answer of 1.5 MB is not passed on. When the
// policy file changes to leave the limits out, both pass, without a
// restart.
func TestTheLimitsInForceAreThePolicys(t *testing.T) {
	s := server.NewMCPServer("up", "1")
	s.AddTool(mcp.NewTool("big", mcp.WithNumber("kb")), func(_ context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText(strings.Repeat("b", r.GetInt("kb", 1)<<10)), nil
	})
	up := httptest.NewServer(server.NewStreamableHTTPServer(s))
	t.Cleanup(up.Close)
	dir := t.TempDir()
	port := testenv.FreePort(t)
	cfgPath := filepath.Join(dir, "settings.json")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`{"port":%d,"servers":[{"id":"up","name":"Upstream","transport":"streamable-http","url":%q}]}`, port, up.URL+"/mcp")), 0o600)
	policyPath := filepath.Join(dir, "policy.json")
	writePolicy := func(limits string) {
		t.Helper()
		if err := os.WriteFile(policyPath, []byte(`{"version": 1, "allowCustomServers": true`+limits+`}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writePolicy(`, "limits": {"maxRequestMB": 1, "maxServerAnswerMB": 1}`)
	rn := launch(t, cfgPath, vaulttest.NewKeyring(), port, func(o *Options) { o.PolicyPath = policyPath })

	// 2 MB, a valid JSON-RPC message apart from its size.
	twoMB := `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"` + strings.Repeat("p", 2<<20) + `"}}`
	status := func() (int, string) {
		resp := rn.post(t, "", twoMB)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := status(); code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "up to 1 MB") {
		t.Fatalf("2 MB under the policy's 1 MB: status %d, %.200s; want 413 naming 1 MB", code, body)
	}
	if got := callBig(t, rn, 1536); !strings.Contains(got, "larger than Countersign's limit of 1 MB") {
		t.Fatalf("a 1.5 MB answer under the policy's 1 MB: %.300s", got)
	}

	writePolicy(``) // the built-in 4 MB and 8 MB
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		code, _ := status()
		if code != http.StatusRequestEntityTooLarge {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("2 MB still refused after the policy's limit was removed")
		}
	}
	if got := callBig(t, rn, 1536); !strings.Contains(got, strings.Repeat("b", 1536<<10)) {
		t.Fatalf("a 1.5 MB answer under the built-in 8 MB: %.300s", got)
	}
}

// callBig opens a session, calls the big tool for kb kilobytes, approves
// the call and returns the answer's body.
func callBig(t *testing.T, rn *running, kb int) string {
	t.Helper()
	resp := rn.post(t, "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	sid := resp.Header.Get("Mcp-Session-Id")
	io.ReadAll(resp.Body)
	resp.Body.Close()
	if sid == "" {
		t.Fatalf("initialize: status %d, no session", resp.StatusCode)
	}
	rn.post(t, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`).Body.Close()
	answer := make(chan string, 1)
	go func() {
		r := rn.post(t, sid, fmt.Sprintf(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"big","arguments":{"kb":%d}}}`, kb))
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		answer <- string(b)
	}()
	q := rn.ui.core.Queue
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		p := q.Pending()
		if i := slices.IndexFunc(p, func(c gate.Call) bool { return c.Tool == "big" }); i >= 0 {
			if err := q.Decide(p[i].ID, gate.Decision{Approve: true}); err != nil {
				t.Fatal(err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the call never waited for a decision")
		}
	}
	select {
	case got := <-answer:
		return got
	case <-time.After(30 * time.Second):
		t.Fatal("the approved call never answered")
		return ""
	}
}
