package guard

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/countersign/countersign/internal/audit"
	"github.com/countersign/countersign/internal/auth"
	"github.com/countersign/countersign/internal/awsauth"
	"github.com/countersign/countersign/internal/awsauth/awstest"
	"github.com/countersign/countersign/internal/catalog"
	"github.com/countersign/countersign/internal/clocktest"
	"github.com/countersign/countersign/internal/gate"
	"github.com/countersign/countersign/internal/jsonrpc"
	"github.com/countersign/countersign/internal/policy"
	"github.com/countersign/countersign/internal/relay"
	"github.com/countersign/countersign/internal/transport"
	"github.com/countersign/countersign/internal/vault"
	"github.com/countersign/countersign/internal/vault/vaulttest"
)

// AWS end to end, nothing reaching AWS: the person signs in through the
// stand-in IAM Identity Center and takes a role; an AI app lists tools
// (read-only by default: only the one marked readOnlyHint shows), a call
// to a write tool is refused without asking, a read-only call waits for
// the person, is approved, reaches the stand-in AWS MCP endpoint signed
// (its own SigV4 check accepts it) and is audited; 20 minutes later, past
// the role credentials' 15-minute life, the next call goes through with
// renewed credentials without a new sign-in. Afterwards no key or session
// token is in any file: vault, audit database or pins.
func TestAWSCallsThroughReviewAndAudit(t *testing.T) {
	f := newFixture(t)
	clock := clocktest.New(time.Now().UTC().Truncate(time.Second))
	ic := awstest.NewIdentityCenter(clock, awstest.Account{ID: "111122223333", Name: "Payments Dev", Roles: []string{"ReadOnly"}})
	defer ic.Close()

	// The AWS MCP endpoint stand-in: two tools, behind the SigV4 check.
	mcpSrv := server.NewMCPServer("aws-stand-in", "1.0.0", server.WithToolCapabilities(false))
	mcpSrv.AddTool(mcp.NewTool("aws___search_documentation", mcp.WithReadOnlyHintAnnotation(true), mcp.WithString("search_phrase")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText("S3 bucket names: 3 to 63 characters"), nil
		})
	mcpSrv.AddTool(mcp.NewTool("aws___call_aws", mcp.WithReadOnlyHintAnnotation(false), mcp.WithString("cli_command")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			t.Error("a write tool reached AWS")
			return mcp.NewToolResultText("ran"), nil
		})
	var mu sync.Mutex
	var rejected []error
	signedCalls := 0
	v := &awstest.Verifier{Service: "aws-mcp", Region: "eu-west-1", Clock: clock, Lookup: ic.Lookup}
	inner := server.NewStreamableHTTPServer(mcpSrv, server.WithStreamableHTTPLogger(slog.New(slog.DiscardHandler)))
	up := httptest.NewServer(v.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		signedCalls++
		mu.Unlock()
		inner.ServeHTTP(w, r)
	}), func(err error) {
		mu.Lock()
		rejected = append(rejected, err)
		mu.Unlock()
	}))
	defer up.Close()
	endpoint := up.URL + "/mcp"

	// Sign in and take a role, as Settings does.
	dir := t.TempDir()
	svc := auth.New(auth.Options{
		Vault: vault.Open(vault.Options{Keyring: vaulttest.NewKeyring(), Dir: dir, Service: "countersign-test"}),
		Now:   clock.Now, Logger: slog.New(slog.DiscardHandler), SignInTimeout: 30 * time.Second,
		OpenURL: awstest.OpenInBrowser, // the person's browser: the stand-in signs in at once
	})
	defer svc.Close()
	sa := auth.ServerAuth{Kind: auth.KindAWS, Name: "AWS", ResourceURL: endpoint, AWS: &auth.AWSSettings{
		StartURL: "https://d-1234567890.awsapps.com/start", Region: "eu-west-1", OIDCEndpoint: ic.URL, PortalEndpoint: ic.URL,
		Scope: awsauth.SigningScope{Service: "aws-mcp", Region: "eu-west-1"}}}
	if err := svc.Register("aws", sa); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := svc.SignIn(ctx, "aws"); err != nil {
		t.Fatal(err)
	}
	sess, _ := svc.AWS("aws")
	if err := sess.ChooseRole(ctx, awsauth.Account{ID: "111122223333", Name: "Payments Dev"}, "ReadOnly"); err != nil {
		t.Fatal(err)
	}
	sa.AWS.AccountID, sa.AWS.Role = "111122223333", "ReadOnly"
	if err := svc.Register("aws", sa); err != nil {
		t.Fatal(err)
	}

	// The AWS policy: read-only by default, account and Regions allowlisted.
	pol, err := policy.New(policy.Config{Name: "AWS", CatalogID: "aws",
		Params: map[string]string{"ssoStartUrl": "https://d-1234567890.awsapps.com/start", "ssoRegion": "eu-west-1",
			"region": "Europe (Ireland)", "account": "111122223333", "role": "ReadOnly"},
		Allowlist: map[catalog.Kind][]string{catalog.KindAWSAccount: {"111122223333"}, catalog.KindAWSRegion: {"eu-*"}}})
	if err != nil {
		t.Fatal(err)
	}
	f.g.SetPolicies(map[string]*policy.Policy{"aws": pol})

	// The relay, with the AWS server dialled through the signing client.
	srv := relay.Server{ID: "aws", Name: "AWS", Dial: func(context.Context) (transport.Conn, error) {
		return transport.NewStreamableHTTP(transport.HTTPOptions{URL: endpoint, Client: svc.Client("aws")}), nil
	}}
	hs := httptest.NewUnstartedServer(nil)
	port := hs.Listener.Addr().(*net.TCPAddr).Port
	r, err := relay.New(relay.Options{Servers: []relay.Server{srv}, Gate: f.g, Filter: f.g, Token: relayToken, Port: port,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	hs.Config.Handler = r
	hs.Start()
	defer func() { hs.CloseClientConnections(); r.Close(); hs.Close() }()

	// The AI app.
	host := transport.NewStreamableHTTP(transport.HTTPOptions{URL: "http://127.0.0.1:" + strconv.Itoa(port) + "/servers/aws/mcp",
		Header: http.Header{"Authorization": {"Bearer " + relayToken}}})
	defer host.Close()
	ask := func(id, method, params string) jsonrpc.Message {
		t.Helper()
		if err := host.Send(ctx, []byte(`{"jsonrpc":"2.0","id":`+id+`,"method":"`+method+`","params":`+params+`}`), nil); err != nil {
			t.Fatal(err)
		}
		deadline := time.After(30 * time.Second)
		for {
			select {
			case in := <-host.Incoming():
				m, err := jsonrpc.Parse(in.Raw)
				if err == nil && m.Kind == jsonrpc.KindResponse && string(m.ID) == id {
					return m
				}
			case <-deadline:
				t.Fatalf("no answer to %s", method)
			}
		}
	}
	ask("1", "initialize", `{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"Claude","version":"1"}}`)
	host.Send(ctx, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`), nil)

	list := ask("2", "tools/list", `{}`)
	if !strings.Contains(string(list.Result), "aws___search_documentation") || strings.Contains(string(list.Result), "aws___call_aws") {
		t.Fatalf("read-only listing: %s", list.Result)
	}

	denied := ask("3", "tools/call", `{"name":"aws___call_aws","arguments":{"cli_command":"aws s3 rb s3://payments"}}`)
	if !strings.Contains(string(denied.Result)+string(denied.Error), "read-only") {
		t.Fatalf("write tool: %s %s", denied.Result, denied.Error)
	}

	call := func(id string) {
		t.Helper()
		done := make(chan jsonrpc.Message, 1)
		go func() {
			done <- ask(id, "tools/call", `{"name":"aws___search_documentation","arguments":{"search_phrase":"bucket names"}}`)
		}()
		c := f.waitCall()
		if c.Server != "aws" || c.Tool != "aws___search_documentation" {
			t.Errorf("the person saw %+v", c)
		}
		if err := f.q.Decide(c.ID, gate.Decision{Approve: true}); err != nil {
			t.Fatal(err)
		}
		m := <-done
		if !strings.Contains(string(m.Result), "3 to 63 characters") {
			t.Fatalf("result: %s %s", m.Result, m.Error)
		}
	}
	call("4")
	clock.Advance(20 * time.Minute) // past the first credentials' 15 minutes
	call("5")

	mu.Lock()
	if len(rejected) > 0 || signedCalls < 4 {
		t.Fatalf("signed requests accepted %d, rejected %v", signedCalls, rejected)
	}
	mu.Unlock()
	if n := len(ic.Issued()); n < 2 || ic.Registrations != 1 {
		t.Fatalf("%d credentials issued, %d sign-ins: want renewal without a new sign-in", n, ic.Registrations)
	}
	if recs := f.events(audit.Filter{Server: "aws", Kinds: []audit.Kind{audit.KindCallForwarded}}); len(recs) != 2 {
		t.Fatalf("audit: %d calls forwarded, want 2", len(recs))
	}
	if recs := f.events(audit.Filter{Server: "aws", Kinds: []audit.Kind{audit.KindPolicyDenied}}); len(recs) != 1 || recs[0].Tool != "aws___call_aws" {
		t.Fatalf("audit of the refused write tool: %+v", recs)
	}

	// No credential in any file: the vault's folder, the audit database
	// and the pins beside it.
	f.log.Close()
	var secrets []string
	for _, c := range ic.Issued() {
		secrets = append(secrets, c.SecretAccessKey, c.SessionToken)
	}
	files := 0
	for _, root := range []string{dir, f.dir} {
		filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
			if err != nil || info.IsDir() {
				return err
			}
			files++
			b, _ := os.ReadFile(path)
			for _, s := range secrets {
				if strings.Contains(string(b), s) {
					t.Errorf("%s holds a credential", path)
				}
			}
			return nil
		})
	}
	if files < 2 {
		t.Fatalf("scanned %d files: the audit database was not found", files)
	}
}
