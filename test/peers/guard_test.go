package peers

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countersign/countersign/internal/audit"
	"github.com/countersign/countersign/internal/catalog"
	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/guard"
	"github.com/countersign/countersign/internal/pins"
	"github.com/countersign/countersign/internal/policy"
	"github.com/countersign/countersign/internal/relay"
	"github.com/countersign/countersign/internal/transport"
	"github.com/mark3labs/mcp-go/client"
	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// countingConn counts the tool calls that reach the real server.
type countingConn struct {
	transport.Conn
	calls *atomic.Int64
}

func (c countingConn) Send(ctx context.Context, msg []byte, h http.Header) error {
	if strings.Contains(string(msg), `"tools/call"`) {
		c.calls.Add(1)
	}
	return c.Conn.Send(ctx, msg, h)
}

// TestGuardWithRealServer puts the guard (policy, pins, redaction, audit)
// between a real SDK-shaped client and server-everything: a hidden tool is
// not listed, a call outside the allowlist never reaches the server, and a
// secret the server returns never reaches the client.
func TestGuardWithRealServer(t *testing.T) {
	dir := peersDir(t)
	url := startEverything(t, dir, "streamableHttp")
	var upstreamCalls atomic.Int64
	upstream := relay.Server{ID: "everything", Name: "Everything", Dial: func(context.Context) (transport.Conn, error) {
		return countingConn{transport.NewStreamableHTTP(transport.HTTPOptions{URL: url}), &upstreamCalls}, nil
	}}

	tmp := t.TempDir()
	auditLog, err := audit.Open(filepath.Join(tmp, "audit.db"), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer auditLog.Close()
	pinStore, err := pins.Open(filepath.Join(tmp, "pins.json"))
	if err != nil {
		t.Fatal(err)
	}
	q := gate.New(gate.Options{})
	defer q.Close()
	g := guard.New(guard.Options{Queue: q, Audit: auditLog, Pins: pinStore, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	// GitHub's rules on this server: echo is not a GitHub tool, but its
	// owner/repo arguments are still held to the allowlist.
	pol, err := policy.New(policy.Config{Name: "Everything", CatalogID: "github",
		Allowlist: map[catalog.Kind][]string{catalog.KindGitHubRepository: {"DEFRA/ffc-*"}}, Hidden: []string{"get-sum"}})
	if err != nil {
		t.Fatal(err)
	}
	g.SetPolicies(map[string]*policy.Policy{"everything": pol})

	hs := httptest.NewUnstartedServer(nil)
	port := hs.Listener.Addr().(*net.TCPAddr).Port
	r, err := relay.New(relay.Options{Servers: []relay.Server{upstream}, Gate: g, Filter: g, Token: token, Port: port,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	hs.Config.Handler = r
	hs.Start()
	defer func() { hs.CloseClientConnections(); r.Close(); hs.Close() }()

	// The person approves whatever reaches them.
	sub := q.Subscribe()
	defer sub.Close()
	var asked atomic.Int64
	go func() {
		for ev := range sub.Events() {
			if ev.Kind == gate.EventAdded {
				asked.Add(1)
				q.Decide(ev.Call.ID, gate.Decision{Approve: true})
			}
		}
	}()

	tr, err := mcptransport.NewStreamableHTTP("http://127.0.0.1:"+strconv.Itoa(port)+"/servers/everything/mcp",
		mcptransport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{Params: mcp.InitializeParams{ProtocolVersion: mcp.LATEST_PROTOCOL_VERSION,
		ClientInfo: mcp.Implementation{Name: "guard-test", Version: "1"}}}); err != nil {
		t.Fatal(err)
	}

	tools, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	if !strings.Contains(strings.Join(names, ","), "echo") || strings.Contains(","+strings.Join(names, ",")+",", ",get-sum,") {
		t.Fatalf("tools listed through the guard: %v (want echo, not get-sum)", names)
	}

	call := func(args map[string]any) *mcp.CallToolResult {
		t.Helper()
		res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "echo", Arguments: args}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	text := func(res *mcp.CallToolResult) string {
		var b strings.Builder
		for _, c := range res.Content {
			if tc, ok := c.(mcp.TextContent); ok {
				b.WriteString(tc.Text)
			}
		}
		return b.String()
	}

	// Outside the allowlist: denied without asking, never sent.
	res := call(map[string]any{"owner": "DEFRA", "repo": "secret-repo", "message": "hi"})
	if !res.IsError || !strings.Contains(text(res), "DEFRA/secret-repo is not in the allowlist") {
		t.Fatalf("call outside the allowlist: %+v", res)
	}
	if n := upstreamCalls.Load(); n != 0 || asked.Load() != 0 {
		t.Fatalf("a denied call reached the server (%d) or the person (%d)", n, asked.Load())
	}

	// A secret in the server's answer is redacted before the client sees it.
	secret := "ghp_" + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Jh1Gf0Ed9Cb8A"
	res = call(map[string]any{"message": "deploy key " + secret})
	got := text(res)
	if res.IsError || strings.Contains(got, secret) || !strings.Contains(got, "[redacted: github token]") {
		t.Fatalf("echo of a secret reached the client as %q", got)
	}
	if upstreamCalls.Load() != 1 || asked.Load() != 1 {
		t.Fatalf("approved call: %d sent, %d asked", upstreamCalls.Load(), asked.Load())
	}

	// And the audit holds the story without the secret. The forwarded and
	// result records are queued off the call's path (the result once the
	// answer was handed to the AI app): let them land.
	const want = "call_result,call_forwarded,call_decided,call_submitted,policy_denied"
	var page audit.Page
	var kinds []string
	for deadline := time.Now().Add(30 * time.Second); ; {
		if err := auditLog.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		var err error
		if page, err = auditLog.Query(ctx, audit.Filter{Server: "everything"}, 0, 100); err != nil {
			t.Fatal(err)
		}
		kinds = kinds[:0]
		for _, rec := range page.Records {
			kinds = append(kinds, string(rec.Kind))
		}
		if strings.Join(kinds, ",") == want || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Join(kinds, ",") != want {
		t.Errorf("audit kinds newest first %v, want %s", kinds, want)
	}
	for _, rec := range page.Records {
		b, _ := json.Marshal(rec)
		if strings.Contains(string(b), secret) {
			t.Errorf("audit event %d holds the secret", rec.ID)
		}
	}
	if rep, err := auditLog.Verify(ctx); err != nil || !rep.OK() {
		t.Errorf("audit verify: %v %v", rep, err)
	}
}
